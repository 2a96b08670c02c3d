"""The best Fashion-MNIST test accuracy the machine it runs on reaches in an hour,
through ``CNNClassifier`` parameters alone.

    .venv/bin/python benchmarks/fashion_mnist_best.py [--epochs 52] [--seed 0]
        [--without erase tta bfloat16] [--backend numpy] [--width 1.0]

The recipe (``RECIPE``): ResNet20 on the torch backend, trained in bfloat16
(``mixed_precision``), augmented with shifts, flips and random erasing, Adam with a
one-cycle schedule, label smoothing 0.1, and flip averaging at predict time
(``test_time_augment``). ``--without`` drops ingredients, for the table of what each
adds. It trains on all 60,000 training images, and only then loads and predicts the
10,000 test images (nothing reads them while training), and prints as its last line
``test accuracy 0.xxxx in NN.N min`` (fit plus predict, wall clock). A JSON line with
the parameters, the seconds of every epoch and the accuracy with and without the
flip averaging goes to ``benchmarks/results/fashion_mnist_best.jsonl``.

``--curve K`` also keeps a copy of the weights after every K-th epoch and, once the fit
and the figure are done, scores each copy on the test images: the curve of test
accuracy against minutes of training, from the same run. The copies are scored only
after training ends, so the curve reads nothing of the test set while training. A
copy from the middle of a one-cycle schedule has not yet had its learning rate
annealed, so each point is below what a run of that length alone would reach.

``--data random --images N`` runs the same code on N random images (for the tests).
Needs the Debian package ``dataset-fashion-mnist`` (or ``SKLEARN_CNN_DATA``) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from sklearn_cnn import CNNClassifier
from sklearn_cnn.backends import get_backend
from sklearn_cnn.datasets import load_fashion_mnist

RESULTS = Path(__file__).parent / "results" / "fashion_mnist_best.jsonl"

#: the estimator parameters of the recipe (``max_iter`` and ``random_state`` come from
#: the command line)
RECIPE = dict(arch="resnet20", backend="torch", mixed_precision="bfloat16",
              augment=["shift", "flip", "erase"], test_time_augment="flip",
              learning_rate="onecycle", learning_rate_init=0.003, batch_size=128,
              label_smoothing=0.1)
#: what ``--without`` can drop, and the parameters that drop it
INGREDIENTS = {"erase": {"augment": ["shift", "flip"]},
               "tta": {"test_time_augment": None},
               "bfloat16": {"mixed_precision": None}}


def recipe(epochs: int, seed: int, without=(), backend: str = "torch",
           width: float | None = None) -> dict:
    """The estimator parameters of one run."""
    params = {**RECIPE, "backend": backend, "max_iter": epochs, "random_state": seed}
    for name in without:
        params.update(INGREDIENTS[name])
    if backend != "torch":
        params["mixed_precision"] = None
    if width is not None:
        params["width"] = width
    return params


class CurveClassifier(CNNClassifier):
    """``CNNClassifier`` that keeps ``(epoch, seconds since fit began, weights)`` after
    every ``curve_every``-th epoch in ``snapshots_`` (the benchmark's ``--curve``), by
    wrapping the backend's ``train_epoch`` for the length of the fit; training itself
    is unchanged."""

    curve_every = 1

    def fit(self, X, y, sample_weight=None):
        self.snapshots_ = []
        self._fit_started = time.perf_counter()
        return super().fit(X, y, sample_weight)

    def _run_epochs(self, backend, model, *args):
        train_epoch, epoch = backend.train_epoch, 0

        def recorded(model, batches, seed, batch_end=None):
            nonlocal epoch
            loss = train_epoch(model, batches, seed, batch_end)
            epoch += 1
            if epoch % self.curve_every == 0:
                self.snapshots_.append((epoch, time.perf_counter() - self._fit_started,
                                        backend.get_weights(model)))
            return loss

        backend.train_epoch = recorded
        try:
            return super()._run_epochs(backend, model, *args)
        finally:
            del backend.train_epoch


def curve(clf: CurveClassifier, X_test, y_test) -> list[dict]:
    """Test accuracy (with the estimator's flip averaging) of every kept copy of the
    weights, after training; the final weights are put back."""
    backend, final = get_backend(clf.backend), clf.get_weights()
    points = []
    for epoch, seconds, weights in clf.snapshots_:
        backend.set_weights(clf.model_, weights)
        start = time.perf_counter()
        accuracy = clf.score(X_test, y_test)
        points.append({"epoch": epoch, "fit_minutes": round(seconds / 60, 2),
                       "predict_minutes": round((time.perf_counter() - start) / 60, 2),
                       "test_accuracy": round(float(accuracy), 4)})
        print(json.dumps(points[-1]), flush=True)
    backend.set_weights(clf.model_, final)
    return points


def data(which: str, subset: str, images: int | None):
    if which == "random":
        rng = np.random.default_rng(0 if subset == "train" else 1)
        n = images or 256
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    X, y = load_fashion_mnist(subset=subset, return_X_y=True)
    return (X, y) if images is None else (X[:images], y[:images])


def run(args) -> dict:
    params = recipe(args.epochs, args.seed, args.without, args.backend, args.width)
    X_train, y_train = data(args.data, "train", args.images)
    if args.curve:
        clf = CurveClassifier(verbose=args.verbose, **params)
        clf.curve_every = args.curve
    else:
        clf = CNNClassifier(verbose=args.verbose, **params)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fitted = time.perf_counter()
    # the test images, only now
    X_test, y_test = data(args.data, "test", args.images and max(args.images // 6, 64))
    accuracy = clf.score(X_test, y_test)
    seconds = time.perf_counter() - start
    points = curve(clf, X_test, y_test) if args.curve else None
    plain = clf.set_params(test_time_augment=None).score(X_test, y_test)
    row = {"run": "fashion_mnist_best", "test_accuracy": round(float(accuracy), 4),
           "test_accuracy_without_tta": round(float(plain), 4),
           "minutes": round(seconds / 60, 2), "fit_minutes": round((fitted - start) / 60, 2),
           "epochs": clf.n_iter_, "seed": args.seed, "without": list(args.without),
           "loss_curve": [round(loss, 4) for loss in clf.loss_curve_],
           "params": {k: v for k, v in params.items()}, "data": args.data,
           "train_images": len(X_train), "test_images": len(X_test),
           "machine": platform.machine(), "cpus": os.cpu_count(),
           "command": " ".join(sys.argv)}
    if points is not None:
        row["curve"] = points
    if params["backend"] == "torch":
        import torch

        from sklearn_cnn.backends.torch.backend import cpu_has_bfloat16

        row["torch_threads"] = torch.get_num_threads()
        # without it PyTorch emulates bfloat16, several times slower than float32
        row["cpu_bfloat16"] = cpu_has_bfloat16()
        row["epoch_seconds"] = [round(s, 1) for s in clf.model_.history[:, "dur"]]
    if args.data != "random":
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    print(f"test accuracy {accuracy:.4f} in {seconds / 60:.1f} min", flush=True)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=52)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--without", nargs="*", default=[], choices=sorted(INGREDIENTS))
    parser.add_argument("--backend", default="torch", choices=["torch", "numpy"])
    parser.add_argument("--width", type=float, default=None)
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "random"])
    parser.add_argument("--images", type=int, default=None,
                        help="train on the first N images (and N/6 test images)")
    parser.add_argument("--curve", type=int, default=0, metavar="K",
                        help="score the weights of every K-th epoch after training")
    parser.add_argument("--verbose", type=int, default=1)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
