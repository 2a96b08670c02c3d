"""One training epoch of LeNet: both backends against a plain PyTorch loop.

Seconds per epoch of a ``--epochs``-epoch fit (the estimator's input validation and
setup included, shared by its epochs). Same network (LeNet-5 on 28x28, 44,426
parameters) and initial weights, same data
(the first 10,000 Fashion-MNIST training images), batch 128, Adam (lr 0.001), no L2
penalty, 2 threads. The three take turns, epoch by epoch, in several fresh processes.
Prints the median and spread of each and the ratios of throughputs (NumPy backend /
plain loop, torch backend / plain loop).

    .venv/bin/python benchmarks/bench_epoch.py [--images 10000] [--repeats 5] [--epochs 3]

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package; when it is
missing this script installs it if it can (root with apt-get) or says how.
"""

from __future__ import annotations

import argparse
import json
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
from sklearn_cnn._weights import init_weights  # noqa: E402
from sklearn_cnn.architectures import build_architecture  # noqa: E402
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


def estimator_epoch(backend):
    def epoch(X, y, batch_size, epochs):
        """Seconds per epoch of ``CNNClassifier.fit`` (validation and setup included)."""
        # alpha=0: the plain loop has no L2 penalty either
        clf = CNNClassifier("lenet", backend=backend, max_iter=epochs,
                            batch_size=batch_size, learning_rate_init=0.001, alpha=0.0,
                            random_state=0)
        start = time.perf_counter()
        clf.fit(X, y)
        return (time.perf_counter() - start) / epochs
    return epoch


def torch_epoch(X, y, batch_size, epochs):
    """Seconds per epoch of a hand-written PyTorch training loop."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    # the estimator's initial weights (He/Glorot, seed 0): PyTorch's default init
    # gives smaller activations whose denormal gradients slow some epochs down
    specs, _ = build_architecture("lenet", (1, 28, 28), 10)
    weights = init_weights(specs, (1, 28, 28), np.random.default_rng(0))
    with torch.no_grad():
        for key, value in model.state_dict().items():
            value.copy_(torch.from_numpy(weights[key]))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for begin in range(0, len(Xt), batch_size):
            batch = order[begin:begin + batch_size]
            optimizer.zero_grad()
            loss_fn(model(Xt[batch]), yt[batch]).backward()
            optimizer.step()
    return (time.perf_counter() - start) / epochs


RUNS = {"numpy backend": estimator_epoch("numpy"),
        "torch backend": estimator_epoch("torch"),
        "plain PyTorch loop": torch_epoch}


def worker(images: int, batch_size: int, epochs: int, rounds: int = 2) -> None:
    """One process: a warm-up epoch of each contender, then ``rounds`` timed fits of
    ``epochs`` epochs each.

    Within a round the contenders take turns, each after a short pause so that the
    previous one's idle BLAS/OpenMP threads have gone to sleep. Prints a JSON dict
    of seconds per epoch.
    """
    import torch

    torch.set_num_threads(THREADS)
    X, y = load_fashion_mnist(return_X_y=True)
    X, y = X[:images], y[:images]
    times = {name: [] for name in RUNS}
    for round_ in range(rounds + 1):
        for name, epoch in RUNS.items():
            time.sleep(0.3)
            seconds = epoch(X, y, batch_size, epochs if round_ else 1)
            if round_:
                times[name].append(seconds)
    print(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs per timed fit (setup cost is shared by them)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.images, args.batch_size, args.epochs)

    import torch

    ensure_fashion_mnist()
    print(f"LeNet, {args.images} Fashion-MNIST images 1x28x28, batch {args.batch_size}, "
          f"Adam, {THREADS} threads; per-epoch time of {args.epochs}-epoch fits, median of "
          f"{args.repeats} processes x 2 interleaved fits (after a warm-up), torch "
          f"{torch.__version__}, "
          f"numpy {np.__version__}")
    times = {name: [] for name in RUNS}
    for _ in range(args.repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", "--images", str(args.images),
             "--batch-size", str(args.batch_size), "--epochs", str(args.epochs)],
            check=True, capture_output=True, text=True).stdout
        for name, values in json.loads(out.splitlines()[-1]).items():
            times[name] += values
    rates = {}
    for name, values in times.items():
        rates[name] = args.images / statistics.median(values)
        print(f"{name:>20}: median {statistics.median(values):6.3f} s/epoch "
              f"(min {min(values):.3f}, max {max(values):.3f}) = {rates[name]:8.0f} images/s")
    for name in ("numpy backend", "torch backend"):
        ratio = rates[name] / rates["plain PyTorch loop"]
        print(f"throughput ratio {name} / plain PyTorch loop: {ratio:.2f}")


if __name__ == "__main__":
    main()
