"""Image regression: predict the angle each Fashion-MNIST item was rotated by.

The task (``sklearn_cnn.datasets.make_rotation_task``): every image rotated by a
random angle in [-40, 40] degrees, the angle is the target. 6,000 training images
(the first of the training set) and 2,000 test images (the first of the test set),
each model with its own defaults: ``CNNRegressor()`` on the images, scikit-learn's
``Ridge``, ``MLPRegressor`` and ``SVR`` on the same pixels as flat rows. Prints a
Markdown table of test R^2 and fit seconds.

    .venv/bin/python benchmarks/rotation_regression.py [--models ...] [--seeds 0 1]

Needs the Fashion-MNIST IDX files (Debian's ``dataset-fashion-mnist``, or
``load_fashion_mnist(download=True)`` once). Measure alone: two numeric processes
on a 2-core machine slow each other 5-30x.
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.svm import SVR

from sklearn_cnn import CNNRegressor
from sklearn_cnn.datasets import load_fashion_mnist, make_rotation_task

N_TRAIN, N_TEST, MAX_DEGREES = 6_000, 2_000, 40.0

MODELS = {
    "CNNRegressor numpy": lambda seed: CNNRegressor(random_state=seed),
    "CNNRegressor torch": lambda seed: CNNRegressor(backend="torch", random_state=seed),
    "Ridge": lambda seed: Ridge(),
    "MLPRegressor": lambda seed: MLPRegressor(random_state=seed),
    "SVR": lambda seed: SVR(),
}


def rotation_task(seed: int = 0):
    """``(X_train, y_train, X_test, y_test)``: rotated images and their angles."""
    train = load_fashion_mnist(subset="train").data[:N_TRAIN]
    test = load_fashion_mnist(subset="test").data[:N_TEST]
    X_train, y_train = make_rotation_task(train, max_degrees=MAX_DEGREES,
                                          random_state=seed)
    X_test, y_test = make_rotation_task(test, max_degrees=MAX_DEGREES,
                                        random_state=seed + 1000)
    return X_train, y_train, X_test, y_test


def measure(name: str, seed: int, data) -> tuple[float, float]:
    """Test R^2 and fit seconds of one model."""
    X_train, y_train, X_test, y_test = data
    if not name.startswith("CNN"):
        X_train, X_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    model = MODELS[name](seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPRegressor's ConvergenceWarning
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return model.score(X_test, y_test), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="seeds of the models and of the angles drawn")
    args = parser.parse_args()
    print(f"Fashion-MNIST rotated by U(-{MAX_DEGREES:g}, {MAX_DEGREES:g}) degrees, predict "
          f"the angle: {N_TRAIN:,} training -> {N_TEST:,} test images\n")
    print("| model | seed | test R^2 | fit seconds |\n| --- | ---: | ---: | ---: |")
    for seed in args.seeds:
        data = rotation_task(seed)
        for name in args.models:
            r2, seconds = measure(name, seed, data)
            print(f"| {name} | {seed} | {r2:.4f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
