"""Command line: ``python -m sklearn_cnn demo`` (also the ``sklearn-cnn`` script)."""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.exceptions import ConvergenceWarning

from .architectures import list_architectures
from .backends import BACKENDS


def demo(backend: str = "numpy", arch: str = "auto", epochs: int | None = None,
         seed: int = 0) -> float:
    """Train on scikit-learn's bundled digits and report held-out accuracy.

    The 1,797 8x8 digit images are scaled to [0, 1] (float32); a stratified 25 % is held out
    (fixed seed). Prints the network, one line per epoch, then accuracy and wall
    time. Returns the accuracy.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from . import CNNClassifier

    start = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    X = (X.reshape(-1, 8, 8) / 16.0).astype("float32")  # float32: what images train in
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8; "
          f"arch={arch}, backend={backend}")
    clf = CNNClassifier(arch, backend=backend, random_state=seed, verbose=1)
    if epochs is not None:
        clf.set_params(max_iter=epochs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X_train, y_train)
    for warning in caught:
        print(f"note: {warning.message}")
    accuracy = clf.score(X_test, y_test)
    print(f"held-out accuracy: {accuracy:.4f}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sklearn-cnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="train a CNN on the bundled digits")
    run.add_argument("--backend", default="numpy", choices=sorted(BACKENDS))
    run.add_argument("--arch", default="auto", choices=list_architectures())
    run.add_argument("--epochs", type=int, default=None,
                     help="epochs to train (default: CNNClassifier's max_iter)")
    run.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    demo(args.backend, args.arch, args.epochs, args.seed)
    return 0
