"""Image regression with CNNRegressor: how far was each image rotated?
===================================================================

Every image is rotated by a random angle in [-40, 40] degrees
(``sklearn_cnn.datasets.make_rotation_task``) and the angle is the target. A
``CNNRegressor`` with its defaults learns it from the pixels; ``Ridge`` on the same
pixels as flat rows is the linear baseline. Prints each model's test R^2 and a few
predictions.

Run it with::

    python examples/rotation_regression.py [--train-size 6000] [--epochs N]

Fashion-MNIST is read with ``sklearn_cnn.datasets.load_fashion_mnist`` (Debian:
``apt-get install dataset-fashion-mnist``; or ``SKLEARN_CNN_DATA``). Without it, the
script uses scikit-learn's 8x8 digits and says so.

Needs the core install only (numpy, scikit-learn): ``pip install sklearn-cnn``.
"""

from __future__ import annotations

import argparse
import time

from sklearn.linear_model import Ridge

from sklearn_cnn import CNNRegressor
from sklearn_cnn.datasets import load_digits_images, load_fashion_mnist, make_rotation_task


def load_images(train_size: int, test_size: int):
    """``(train images, test images, name)``: Fashion-MNIST, or the digits."""
    try:
        train = load_fashion_mnist(subset="train").data[:train_size]
        test = load_fashion_mnist(subset="test").data[:test_size]
        return train, test, "Fashion-MNIST"
    except FileNotFoundError:
        digits = load_digits_images().data
        print("Fashion-MNIST not found; using scikit-learn's 8x8 digits instead")
        return digits[:1400], digits[1400:], "digits"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--epochs", default="auto", help="max_iter of the CNN")
    args = parser.parse_args()
    train, test, name = load_images(args.train_size, args.test_size)
    X_train, y_train = make_rotation_task(train, max_degrees=40, random_state=0)
    X_test, y_test = make_rotation_task(test, max_degrees=40, random_state=1)
    print(f"{name}: {len(X_train):,} training and {len(X_test):,} test images, "
          f"rotated by -40 to 40 degrees")
    epochs = args.epochs if args.epochs == "auto" else int(args.epochs)
    models = {"CNNRegressor": (CNNRegressor(max_iter=epochs, random_state=0), False),
              "Ridge on flat pixels": (Ridge(), True)}
    for label, (model, flat) in models.items():
        fit_X, score_X = X_train, X_test
        if flat:
            fit_X, score_X = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
        start = time.perf_counter()
        model.fit(fit_X, y_train)
        seconds = time.perf_counter() - start
        print(f"{label:>22}: test R^2 {model.score(score_X, y_test):.3f} ({seconds:.1f} s)")
    predicted = models["CNNRegressor"][0].predict(X_test[:5])
    print("true angle -> predicted: " + ", ".join(
        f"{true:+.0f} -> {guess:+.0f}" for true, guess in zip(y_test[:5], predicted,
                                                                strict=True)))


if __name__ == "__main__":
    main()
