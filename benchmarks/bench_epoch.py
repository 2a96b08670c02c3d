"""One training epoch of LeNet: the NumPy backend against a plain PyTorch loop.

Same network (LeNet-5 on 28x28, 44,426 parameters), same data (the first 10,000
Fashion-MNIST training images), batch 128, Adam (lr 0.001), 2 threads, one epoch per
repetition; prints the median and spread of each and the ratio of throughputs.

    .venv/bin/python benchmarks/bench_epoch.py [--images 10000] [--repeats 5]

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package; when it is
missing this script installs it if it can (root with apt-get) or says how.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402

from sklearn_cnn import CNNClassifier  # noqa: E402
from sklearn_cnn.datasets import DEBIAN_FASHION_MNIST, load_fashion_mnist  # noqa: E402


def ensure_fashion_mnist() -> None:
    if (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"],
                       check=True)
        return
    sys.exit("Fashion-MNIST is missing: run `sudo apt-get install dataset-fashion-mnist` "
             "(Debian/Ubuntu) or put the IDX files in $SKLEARN_CNN_DATA")


def numpy_epoch(X, y, batch_size):
    clf = CNNClassifier("lenet", max_iter=1, batch_size=batch_size,
                        learning_rate_init=0.001, random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def torch_epoch(X, y, batch_size):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.randperm(len(Xt))
    model.train()
    for begin in range(0, len(Xt), batch_size):
        batch = order[begin:begin + batch_size]
        optimizer.zero_grad()
        loss_fn(model(Xt[batch]), yt[batch]).backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(THREADS)
    ensure_fashion_mnist()
    X, y = load_fashion_mnist(return_X_y=True)
    X, y = X[:args.images], y[:args.images]
    print(f"LeNet, {len(X)} Fashion-MNIST images 1x28x28, batch {args.batch_size}, Adam, "
          f"{THREADS} threads, {args.repeats} repetitions (+1 warm-up), torch "
          f"{torch.__version__}, numpy {np.__version__}")
    times = {"numpy backend": [], "plain PyTorch loop": []}
    for repeat in range(args.repeats + 1):
        # interleaved, so drifting machine load hits both alike
        for name, epoch in (("numpy backend", numpy_epoch), ("plain PyTorch loop", torch_epoch)):
            seconds = epoch(X, y, args.batch_size)
            if repeat:
                times[name].append(seconds)
    rates = {}
    for name, values in times.items():
        rates[name] = len(X) / statistics.median(values)
        print(f"{name:>20}: median {statistics.median(values):6.3f} s/epoch "
              f"(min {min(values):.3f}, max {max(values):.3f}) = {rates[name]:8.0f} images/s")
    ratio = rates["numpy backend"] / rates["plain PyTorch loop"]
    print(f"throughput ratio numpy / PyTorch: {ratio:.2f}")


if __name__ == "__main__":
    main()
