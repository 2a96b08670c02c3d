"""Data-parallel training with torchrun against one process, on the CPUs it runs on.

Fits the default network (torch backend, float64, no augmentation) on the first
``--images`` Fashion-MNIST training images for ``--epochs`` epochs twice, each in
fresh processes: once as one process (``python``), once as ``--nproc`` processes
(``torchrun --standalone --nproc_per_node``, gloo). Prints the seconds per epoch of
each and the largest difference between their fitted weights.

    .venv/bin/python benchmarks/data_parallel.py [--images 10000] [--epochs 3] [--nproc 2]

On a machine with fewer cores than processes times threads no speed-up is expected:
the point is the agreement, and the cost of talking between the processes. Measure
alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model


def train(args) -> None:
    """One fit (on every process torchrun started); the first process saves it."""
    import numpy as np

    from sklearn_cnn import CNNClassifier, distributed

    if args.data == "random":
        rng = np.random.default_rng(0)
        X, y = rng.random((args.images, 1, 28, 28)), rng.integers(0, 3, args.images)
    else:
        from sklearn_cnn.datasets import load_fashion_mnist

        X, y = load_fashion_mnist(subset="train", return_X_y=True)
        X, y = X[:args.images].astype(np.float64), y[:args.images]
    clf = CNNClassifier(backend="torch", augment=None, max_iter=args.epochs, batch_size=128,
                        random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - start
    clf.save(args.out)  # the first process only
    if distributed.is_main_process():
        print(json.dumps({"processes": distributed.world()[1],
                          "seconds_per_epoch": seconds / clf.n_iter_}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--data", choices=["fashion", "random"], default="fashion")
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.out:
        train(args)
        return
    import numpy as np
    import torch

    import sklearn_cnn

    common = ["--images", str(args.images), "--epochs", str(args.epochs), "--data", args.data]
    with tempfile.TemporaryDirectory() as folder:
        one, many = Path(folder) / "one.npz", Path(folder) / "many.npz"
        runs = {
            "one process": [sys.executable, __file__, *common, "--out", str(one)],
            f"torchrun, {args.nproc} processes": [
                sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={args.nproc}", __file__, *common, "--out", str(many)],
        }
        results = {}
        for name, command in runs.items():
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
        ours, theirs = (sklearn_cnn.load(path).get_weights() for path in (one, many))
        difference = max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours)
    print(f"Measured by `python benchmarks/data_parallel.py --images {args.images} --epochs "
          f"{args.epochs} --nproc {args.nproc}` on {time.strftime('%Y-%m-%d')}: "
          f"{cpu_model()} ({os.cpu_count()} CPUs), Python {platform.python_version()}, "
          f"torch {torch.__version__}; the default network in float64.\n")
    print("| training | seconds per epoch |\n| --- | ---: |")
    for name, result in results.items():
        print(f"| {name} | {result['seconds_per_epoch']:.2f} |")
    print(f"\nmax weight difference to one process: {difference:.3g}")


if __name__ == "__main__":
    main()
