"""LeNet (CNNClassifier) against MLPClassifier and SVC on Fashion-MNIST
====================================================================

All three are scikit-learn classifiers, so one loop fits and scores them; the CNN
reads the images as (n, 1, 28, 28), the others as flat rows of 784 pixels. Prints a
Markdown table of test accuracy and fit time.

Run it with::

    python examples/fashion_mnist_comparison.py [--train-size 10000] [--epochs 30]

Fashion-MNIST is read with ``sklearn_cnn.datasets.load_fashion_mnist`` (Debian:
``apt-get install dataset-fashion-mnist``; or ``SKLEARN_CNN_DATA``; or pass
``--download`` to fetch it with torchvision). Without it, the script falls back to
scikit-learn's 8x8 digits and says so.

Needs the core install (``pip install sklearn-cnn``); ``--backend torch`` needs
``pip install 'sklearn-cnn[torch]'``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images, load_fashion_mnist


def load_data(train_size: int, test_size: int | None, download: bool = False):
    """Stratified subsets of Fashion-MNIST's train and test sets, or of the digits.

    Returns
    -------
    X_train, X_test, y_train, y_test, name
    """
    try:
        X_train, y_train = load_fashion_mnist(subset="train", return_X_y=True,
                                              download=download)
        X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True,
                                            download=download)
        name = "Fashion-MNIST"
    except (FileNotFoundError, ImportError) as exc:
        print(f"Note: Fashion-MNIST is not available ({type(exc).__name__}), so this run "
              "uses scikit-learn's 8x8 digits instead. Get it with `apt-get install "
              "dataset-fashion-mnist`, SKLEARN_CNN_DATA=<folder> or --download.\n")
        X, y = load_digits_images(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=0)
        name = "digits 8x8"
    X_train, y_train = _subset(X_train, y_train, train_size)
    X_test, y_test = _subset(X_test, y_test, test_size)
    return X_train, X_test, y_train, y_test, name


def _subset(X, y, size):
    if size is None or size >= len(X):
        return X, y
    X, _, y, _ = train_test_split(X, y, train_size=size, stratify=y, random_state=0)
    return X, y


def models(epochs: int, backend: str) -> dict:
    """The three contenders; MLP and SVC get flat pixels, the CNN images."""
    return {
        f"LeNet (CNNClassifier, {backend}, {epochs} epochs)":
            CNNClassifier("lenet", backend=backend, max_iter=epochs, random_state=0),
        "MLPClassifier (256, 128), early stopping":
            MLPClassifier((256, 128), early_stopping=True, random_state=0),
        "SVC (RBF kernel, C=10)": SVC(C=10),
    }


def main(train_size: int = 10000, epochs: int = 30, test_size: int | None = None,
         backend: str = "numpy", download: bool = False) -> dict[str, float]:
    """Fit and score each model; print and return the test accuracies.

    Parameters
    ----------
    train_size : int, default=10000
        Training images (a stratified subset of the 60,000).
    epochs : int, default=30
        LeNet's epochs (``max_iter``).
    test_size : int, default=None
        Test images (all 10,000 when None).
    backend : {"numpy", "torch"}, default="numpy"
    download : bool, default=False
        Fetch Fashion-MNIST with torchvision if it is not found.

    Returns
    -------
    dict of str to float
        Test accuracy by model.
    """
    X_train, X_test, y_train, y_test, name = load_data(train_size, test_size, download)
    print(f"{name}: {len(X_train)} training and {len(X_test)} test images "
          f"of shape {X_train.shape[1:]}\n")
    rows, accuracies = [], {}
    for label, model in models(epochs, backend).items():
        flat = not isinstance(model, CNNClassifier)
        train, test = (X.reshape(len(X), -1) if flat else X for X in (X_train, X_test))
        start = time.perf_counter()
        model.fit(train, y_train)
        seconds = time.perf_counter() - start
        accuracies[label] = model.score(test, y_test)
        rows.append(f"| {label} | {accuracies[label]:.4f} | {seconds:.1f} |")
    print("| model | test accuracy | fit seconds |")
    print("| --- | --- | --- |")
    print("\n".join(rows))
    best = max(accuracies, key=accuracies.get)
    print(f"\nbest test accuracy: {best} ({accuracies[best]:.4f}); chance is "
          f"{1 / len(np.unique(y_train)):.2f}")
    return accuracies


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--train-size", type=int, default=None,
                        help="training images (default 10000; 600 when --epochs < 5)")
    parser.add_argument("--test-size", type=int, default=None,
                        help="test images (default all 10000; 1000 when --epochs < 5)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    parser.add_argument("--download", action="store_true",
                        help="fetch Fashion-MNIST with torchvision if it is missing")
    args = parser.parse_args()
    quick = args.epochs < 5  # a smoke run: keep it to seconds
    if args.train_size is None:
        args.train_size = 600 if quick else 10000
    if args.test_size is None and quick:
        args.test_size = 1000
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    main(args.train_size, args.epochs, args.test_size, args.backend, args.download)
