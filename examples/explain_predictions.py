"""What does the network look at? Saliency, Grad-CAM and occlusion
===============================================================

Saliency, Grad-CAM and occlusion maps (:mod:`sklearn_cnn.inspection`, drawn by
:class:`~sklearn_cnn.plotting.ExplanationDisplay`) of a CNN trained on Fashion-MNIST
(or, without it, on scikit-learn's 8x8 digits). Run it with::

    python examples/explain_predictions.py [--train-size 10000] [--epochs N] [--out FILE]

Needs matplotlib (``pip install 'sklearn-cnn[plot]'``). Without ``--out`` the figure
is drawn but not written anywhere (the documentation's gallery shows it as drawn).
"""

from __future__ import annotations

import argparse
import time

try:
    import matplotlib

    matplotlib.use("Agg")
except ImportError:
    raise SystemExit("this example draws with matplotlib: pip install 'sklearn-cnn[plot]'"
                     ) from None

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import (
    FASHION_MNIST_CLASSES,
    load_digits_images,
    load_fashion_mnist,
)
from sklearn_cnn.plotting import ExplanationDisplay


def load_data(train_size: int):
    """``(X_train, y_train, X_test, y_test, class names)``."""
    try:
        X, y = load_fashion_mnist(subset="train", return_X_y=True)
        X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
        return X[:train_size], y[:train_size], X_test, y_test, FASHION_MNIST_CLASSES
    except FileNotFoundError:
        print("Fashion-MNIST not found; using scikit-learn's 8x8 digits instead")
        X, y = load_digits_images(return_X_y=True)
        return X[:1400], y[:1400], X[1400:], y[1400:], [str(d) for d in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", default="auto", help="max_iter of the CNN")
    parser.add_argument("--images", type=int, default=4, help="test images to explain")
    parser.add_argument("--out", help="write the figure to this PNG file")
    args = parser.parse_args()
    X, y, X_test, y_test, names = load_data(args.train_size)
    epochs = args.epochs if args.epochs == "auto" else int(args.epochs)
    start = time.perf_counter()
    clf = CNNClassifier(max_iter=epochs, random_state=0).fit(X, y)
    print(f"trained on {len(X):,} images in {time.perf_counter() - start:.0f} s; "
          f"test accuracy {clf.score(X_test, y_test):.4f}")
    # one test image of each of the first classes, so the rows differ
    rows = [int((y_test == label).nonzero()[0][0]) for label in clf.classes_[:args.images]]
    start = time.perf_counter()
    display = ExplanationDisplay.from_estimator(clf, X_test[rows], class_names=names)
    print(f"explained {len(rows)} images with saliency, Grad-CAM and occlusion in "
          f"{time.perf_counter() - start:.1f} s (titles: the predicted class)")
    if args.out:
        display.figure_.savefig(args.out, dpi=80)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
