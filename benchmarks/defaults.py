"""CNNClassifier() with its default parameters against scikit-learn's classical models.

Every model with its own defaults, on the same splits: accuracy and fit time.

- ``digits``: the 1,797 8x8 digits in [0, 1], ``cross_val_score(cv=5)`` (mean
  accuracy, median fit time per fold); the CNN on ``(n, 8, 8)`` images and again on
  flat ``(n, 64)`` rows.
- ``fmnist10k``: the first 10,000 Fashion-MNIST training images -> the 10,000 test
  images (needs the IDX files: Debian's ``dataset-fashion-mnist``, or
  ``load_fashion_mnist(download=True)`` once).
- ``fmnist60k``: all 60,000 training images -> the test images (CNNs only: an RBF SVC
  on 60,000 images takes far longer than the CNN).

    .venv/bin/python benchmarks/defaults.py [--data digits fmnist10k] [--models ...]

Measure alone: two numeric processes on a 2-core machine slow each other 5-30x.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images, load_fashion_mnist

MODELS = {
    "CNNClassifier numpy": lambda: CNNClassifier(random_state=0),
    "CNNClassifier torch": lambda: CNNClassifier(backend="torch", random_state=0),
    "SVC": lambda: SVC(),
    "MLPClassifier": lambda: MLPClassifier(random_state=0),
    "LogisticRegression": lambda: LogisticRegression(max_iter=1000),
    "HistGradientBoostingClassifier": lambda: HistGradientBoostingClassifier(random_state=0),
}
CNNS = [name for name in MODELS if name.startswith("CNN")]


def flat(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1)


def digits(name: str) -> list[tuple[str, float, float]]:
    X, y = load_digits_images(return_X_y=True)
    inputs = [("digits (n, 8, 8)", X)] if name in CNNS else []
    inputs.append(("digits flat (n, 64)", flat(X)))
    rows = []
    for label, data in inputs:
        result = cross_validate(MODELS[name](), data, y, cv=5)
        rows.append((label, result["test_score"].mean(), float(np.median(result["fit_time"]))))
    return rows


def fashion(name: str, n_train: int) -> list[tuple[str, float, float]]:
    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    X, y = X[:n_train], y[:n_train]
    if name not in CNNS:
        X, X_test = flat(X), flat(X_test)
    model = MODELS[name]()
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    return [(f"Fashion-MNIST {n_train:,} -> 10,000", model.score(X_test, y_test), seconds)]


DATA = {"digits": digits, "fmnist10k": lambda name: fashion(name, 10_000),
        "fmnist60k": lambda name: fashion(name, 60_000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=["digits", "fmnist10k"])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()
    print("| data | model | accuracy | fit seconds |\n| --- | --- | ---: | ---: |")
    for data in args.data:
        for name in args.models:
            if data == "fmnist60k" and name not in CNNS:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning
                for label, accuracy, seconds in DATA[data](name):
                    print(f"| {label} | {name} | {accuracy:.4f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
