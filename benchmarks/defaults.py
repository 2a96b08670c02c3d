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
    .venv/bin/python benchmarks/defaults.py --ablation [--backend torch] [--data ...]
    .venv/bin/python benchmarks/defaults.py --seeds 5 [--backends numpy torch]

``--seeds N``: the defaults' digits 5-fold accuracy for N seeds on both backends,
with and without the default test-time averaging (the same fits), and the median
fit time.

``--ablation``: what each lever of the defaults contributes. The CNN with its
defaults, then with one lever set back to its earlier default at a time, then
with all of them set back (the old defaults), on the same data and splits.

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

#: one lever of the defaults at a time, set back to its earlier default
LEVERS = {
    "arch='lenet' (was; now 'auto')": {"arch": "lenet"},
    "augment=None (was; now 'auto')": {"augment": None},
    "augment='shift' (whole pixels, up to 1/8: 1 px on 8x8, 4 on 28)": {"augment": "shift"},
    "label_smoothing=0 (was; now 0.1)": {"label_smoothing": 0.0},
    "learning_rate='constant' (was; now 'onecycle')": {"learning_rate": "constant"},
    "learning_rate_init=0.003 (was; now 0.01)": {"learning_rate_init": 0.003},
    "max_iter=30 (was; now 'auto')": {"max_iter": 30},
    "batch_size=200 (was; now 'auto')": {"batch_size": 200},
}
OLD_DEFAULTS = {k: v for change in LEVERS.values() for k, v in change.items()
                if k != "augment"} | {"augment": None}
ABLATION = {"the defaults": {}, **LEVERS, "all of them (the old defaults)": OLD_DEFAULTS}


def flat(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1)


def digits(name: str, make=None) -> list[tuple[str, float, float]]:
    X, y = load_digits_images(return_X_y=True)
    inputs = [("digits (n, 8, 8)", X)] if name in CNNS else []
    if make is None:
        inputs.append(("digits flat (n, 64)", flat(X)))
    rows = []
    for label, data in inputs:
        result = cross_validate((make or MODELS[name])(), data, y, cv=5)
        rows.append((label, result["test_score"].mean(), float(np.median(result["fit_time"]))))
    return rows


def fashion(name: str, n_train: int, make=None) -> list[tuple[str, float, float]]:
    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    X, y = X[:n_train], y[:n_train]
    if name not in CNNS:
        X, X_test = flat(X), flat(X_test)
    model = (make or MODELS[name])()
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    return [(f"Fashion-MNIST {n_train:,} -> 10,000", model.score(X_test, y_test), seconds)]


DATA = {"digits": digits, "fmnist10k": lambda name, make=None: fashion(name, 10_000, make),
        "fmnist60k": lambda name, make=None: fashion(name, 60_000, make)}


def ablation(data: list[str], backend: str) -> None:
    print(f"CNNClassifier(backend={backend!r}, random_state=0), one change at a time\n")
    print("| data | change from the defaults | accuracy | fit seconds |\n"
          "| --- | --- | ---: | ---: |")
    name = f"CNNClassifier {backend}"
    for dataset in data:
        for change, params in ABLATION.items():
            def make(params=params):
                return CNNClassifier(backend=backend, random_state=0, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the old defaults' ConvergenceWarning
                for label, accuracy, seconds in DATA[dataset](name, make):
                    print(f"| {label} | {change} | {accuracy:.4f} | {seconds:.1f} |",
                          flush=True)


def plain_score(estimator, X, y) -> float:
    """The accuracy of ``estimator`` without test-time copies of the images."""
    chosen = estimator.test_time_augment
    try:
        return estimator.set_params(test_time_augment=None).score(X, y)
    finally:
        estimator.set_params(test_time_augment=chosen)


def seeds(n_seeds: int, backends: list[str]) -> None:
    """The defaults' digits 5-fold accuracy for seeds 0..n_seeds-1 on each backend,
    with the default test-time averaging and without it (the same fits)."""
    X, y = load_digits_images(return_X_y=True)
    print("| backend | predictions | " + " | ".join(f"seed {s}" for s in range(n_seeds))
          + " | lowest | median fit seconds |\n| --- | --- |" + " ---: |" * (n_seeds + 2))
    for backend in backends:
        scores: dict[str, list[float]] = {"defaults": [], "test_time_augment=None": []}
        fit_times = []
        for seed in range(n_seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = cross_validate(CNNClassifier(backend=backend, random_state=seed),
                                        X, y, cv=5, scoring={"defaults": "accuracy",
                                                             "plain": plain_score})
            scores["defaults"].append(result["test_defaults"].mean())
            scores["test_time_augment=None"].append(result["test_plain"].mean())
            fit_times.extend(result["fit_time"])
        for label, values in scores.items():
            print(f"| {backend} | {label} | " + " | ".join(f"{v:.4f}" for v in values)
                  + f" | {min(values):.4f} | {np.median(fit_times):.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=["digits", "fmnist10k"])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--ablation", action="store_true",
                        help="one lever of the defaults at a time (CNN only)")
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy",
                        help="the backend of --ablation")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="the defaults' digits 5-fold accuracy for seeds 0..N-1, on "
                             "both backends (or --backends)")
    parser.add_argument("--backends", nargs="+", choices=["numpy", "torch"],
                        default=["numpy", "torch"], help="the backends of --seeds")
    args = parser.parse_args()
    if args.seeds:
        seeds(args.seeds, args.backends)
        return
    if args.ablation:
        ablation(args.data, args.backend)
        return
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
