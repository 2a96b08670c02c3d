"""Held-out digits accuracy of CNNClassifier's defaults over several splits and seeds.

One fixed split says little about a classifier whose score moves by a percent with
the seed; this prints every (split, seed) score, the mean and the minimum, per
backend.

    .venv/bin/python benchmarks/digits_accuracy.py [--splits 2] [--seeds 3] [--arch lenet]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier
from sklearn_cnn.backends import BACKENDS
from sklearn_cnn.datasets import load_digits_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arch", default="lenet")
    args = parser.parse_args()
    X, y = load_digits_images(return_X_y=True)
    for backend in BACKENDS:
        scores, start = [], time.perf_counter()
        for split, seed in itertools.product(range(args.splits), range(args.seeds)):
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=0.25, stratify=y, random_state=split)
            clf = CNNClassifier(args.arch, backend=backend, random_state=seed)
            scores.append(clf.fit(X_train, y_train).score(X_test, y_test))
        seconds = (time.perf_counter() - start) / len(scores)
        print(f"{backend:>6}: {' '.join(f'{s:.3f}' for s in scores)}  mean "
              f"{np.mean(scores):.3f}  min {min(scores):.3f}  ({seconds:.1f} s per fit)")


if __name__ == "__main__":
    main()
