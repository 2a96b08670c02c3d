"""Issue 6's Fashion-MNIST figures: ResNet20 with augmentation and a one-cycle
schedule, and LeNet with versus without augmentation on the same budget.

    .venv/bin/python benchmarks/fashion_mnist_training.py resnet20 [--epochs 10]
    .venv/bin/python benchmarks/fashion_mnist_training.py lenet [--epochs 30]
        [--augment none standard] [--schedule constant]
    .venv/bin/python benchmarks/fashion_mnist_training.py lenet15 [--batch-norm]

Each run prints one line per epoch (``verbose=1``), then the test accuracy and the
wall time of fit + predict, and appends a JSON line to
``benchmarks/results/fashion_mnist_training.jsonl``. Needs the Debian package
``dataset-fashion-mnist`` (or ``SKLEARN_CNN_DATA``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_fashion_mnist

RESULTS = Path(__file__).parent / "results" / "fashion_mnist_training.jsonl"


def run(name: str, **params) -> dict:
    X_train, y_train = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    clf = CNNClassifier(verbose=1, **params)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    accuracy = clf.score(X_test, y_test)
    seconds = time.perf_counter() - start
    row = {"run": name, "test_accuracy": round(float(accuracy), 4),
           "seconds": round(seconds, 1), "epochs": clf.n_iter_,
           "params": {k: v for k, v in params.items()},
           "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
           "command": " ".join(sys.argv)}
    print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["resnet20", "lenet", "lenet15"])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--augment", nargs="+", default=["none", "standard"],
                        help="LeNet runs to compare (none, flip, shift, rotate, standard)")
    parser.add_argument("--schedule", default="constant", help="learning_rate of LeNet")
    parser.add_argument("--batch-norm", action="store_true", help="lenet15: BatchNorm")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.which == "resnet20":
        run("resnet20 augment=standard onecycle", arch="resnet20", backend=args.backend,
            augment="standard", learning_rate="onecycle", learning_rate_init=0.003,
            batch_size=128, max_iter=args.epochs or 10, random_state=0)
    elif args.which == "lenet15":  # LeNet >= 0.90 within 15 epochs, both backends
        for backend in ("numpy", "torch"):
            run(f"lenet {backend} 15 epochs cosine flip batch_norm={args.batch_norm}",
                arch="lenet", backend=backend, augment="flip", learning_rate="cosine",
                batch_norm=args.batch_norm, batch_size=128, max_iter=args.epochs or 15,
                random_state=0)
    else:
        for name in args.augment:
            augment = None if name == "none" else name
            run(f"lenet augment={augment} learning_rate={args.schedule}", arch="lenet",
                backend=args.backend, augment=augment, learning_rate=args.schedule,
                batch_size=128, max_iter=args.epochs or 30, random_state=0)


if __name__ == "__main__":
    main()
