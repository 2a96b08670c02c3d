"""Train with PyTorch, deploy with NumPy only
==========================================

The model file written by ``clf.save(path)`` holds plain arrays and a JSON
description (no pickle), and ``sklearn_cnn.load(path, backend="numpy")`` rebuilds the
network on the from-scratch NumPy backend: a server that predicts needs neither
torch nor skorch, and gets the same predictions.

Run it with::

    python examples/train_torch_deploy_numpy.py [--epochs 20]

Trains with torch when it is installed (``pip install 'sklearn-cnn[torch]'``), and
says so and uses the NumPy backend when it is not.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import sklearn_cnn
from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images


def main(epochs: int = 20) -> tuple[float, float]:
    """Fit LeNet with the torch backend, save, load on NumPy, compare.

    Parameters
    ----------
    epochs : int, default=20

    Returns
    -------
    tuple of float
        Test accuracy of the trained model and of the NumPy copy loaded from disk.
    """
    X, y = load_digits_images(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)

    backend = "torch"
    try:
        importlib.import_module("torch")
        importlib.import_module("skorch")
    except ImportError:
        print("torch/skorch are not installed (pip install 'sklearn-cnn[torch]'): skipping "
              "the torch training; the save/load round trip below uses the NumPy backend.")
        backend = "numpy"

    clf = CNNClassifier("lenet", backend=backend, max_iter=epochs, random_state=0)
    clf.fit(X_train, y_train)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lenet_digits.npz"
        clf.save(path)
        print(f"a model file is {path.stat().st_size / 1024:.0f} KiB of arrays and JSON "
              "(written to a temporary folder and read back)")
        deployed = sklearn_cnn.load(path, backend="numpy")  # never unpickles anything

    same = np.array_equal(clf.predict(X_test), deployed.predict(X_test))
    gap = np.abs(clf.predict_proba(X_test) - deployed.predict_proba(X_test)).max()
    trained, loaded = clf.score(X_test, y_test), deployed.score(X_test, y_test)
    print(f"{backend} model test accuracy:        {trained:.4f}")
    print(f"numpy model (from file) test accuracy: {loaded:.4f}")
    print(f"identical predictions: {same}; largest probability difference {gap:.1e} "
          "(float32 rounding)")
    return trained, loaded


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    main(args.epochs)
