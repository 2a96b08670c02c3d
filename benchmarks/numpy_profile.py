"""Where the NumPy backend's training step spends its time.

Two reports, both on 1x28x28 images in batches of 128:

- ``--layers ARCH`` times each layer's forward and backward pass of a training step
  of ARCH (``simple``, ``lenet``...), in the order training runs them, median of
  ``--steps`` steps on Fashion-MNIST (or random images with ``--data random``);
- ``--products`` times only the matrix products of ResNet20's 19 convolutions
  (forward, weight gradient and input gradient, on whole-batch matrices), the floor
  under any im2col-style step of that network with the BLAS NumPy uses.

Usage::

    .venv/bin/python benchmarks/numpy_profile.py --layers simple
    .venv/bin/python benchmarks/numpy_profile.py --products

Measure alone: another busy process on the machine changes every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
from machine import cpu_model

#: ResNet20's 3x3 convolutions on 28x28 images: (in channels, out channels, output
#: side); the stride-2 ones are counted at their output size
RESNET20_CONVS = ([(1, 16, 28)] + [(16, 16, 28)] * 6 + [(16, 32, 14)] + [(32, 32, 14)] * 5
                  + [(32, 64, 7)] + [(64, 64, 7)] * 5)


def layer_profile(arch: str, steps: int, data: str, batch: int = 128) -> list[str]:
    """One row per layer: its forward and backward milliseconds in a training step."""
    from sklearn_cnn import CNNClassifier

    if data == "random":
        rng = np.random.default_rng(0)
        X = rng.random((batch * (steps + 1), 1, 28, 28), dtype=np.float32)
        y = np.arange(len(X)) % 10
    else:
        from sklearn_cnn.datasets import load_fashion_mnist

        X, y = load_fashion_mnist(subset="train", return_X_y=True)
        X, y = X[:batch * (steps + 1)].astype(np.float32), y[:batch * (steps + 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = CNNClassifier(arch, backend="numpy", max_iter=1, batch_size=batch,
                            augment=None, random_state=0).fit(X[:batch], y[:batch])
    layers = clf.model_.root.order  # the order training runs them in
    forward = {i: [] for i in range(len(layers))}
    backward = {i: [] for i in range(len(layers))}
    rng = np.random.default_rng(1)
    for step in range(steps):
        x = X[batch * step:batch * (step + 1)]
        for i, layer in enumerate(layers):
            start = time.perf_counter()
            x = layer.forward(x, training=True)
            forward[i].append(time.perf_counter() - start)
        grad = rng.normal(size=x.shape).astype(x.dtype)
        for i in reversed(range(len(layers))):
            start = time.perf_counter()
            grad = layers[i].backward(grad)
            backward[i].append(time.perf_counter() - start)
            if grad is None:
                break
    rows = [f"**{arch}, one training step of {batch} images, layer by layer** (ms, "
            f"median of {steps} steps):", "", "| layer | forward | backward |",
            "| --- | ---: | ---: |"]
    total = 0.0
    for i, layer in enumerate(layers):
        f = 1000 * statistics.median(forward[i])
        b = 1000 * statistics.median(backward[i]) if backward[i] else 0.0
        total += f + b
        rows.append(f"| {layer.key} {type(layer).__name__} | {f:.2f} | {b:.2f} |")
    rows.append(f"| all | | {total:.1f} |")
    return rows


def product_floor(repeats: int, batch: int = 128) -> list[str]:
    """ResNet20's convolution products alone, per training step, on 2 and 1 threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    arrays = {}
    for c, o, side in set(RESNET20_CONVS):
        m = batch * side * side
        arrays[c, o, side] = (rng.standard_normal((o, 9 * c), dtype=np.float32),
                              rng.standard_normal((9 * c, m), dtype=np.float32),
                              rng.standard_normal((o, m), dtype=np.float32))

    def step() -> None:
        for c, o, side in RESNET20_CONVS:
            weight, cols, dout = arrays[c, o, side]
            weight @ cols                     # forward
            cols @ dout.T                     # weight gradient
            if c > 1:
                weight.T @ dout               # input gradient (the first layer has none)

    flops = sum(2 * 9 * c * o * batch * side * side * (3 if c > 1 else 2)
                for c, o, side in RESNET20_CONVS)
    rows = [f"**ResNet20's convolution products per training step of {batch} images** "
            f"({flops / 1e9:.1f} GFLOP, median of {repeats}):", "",
            "| BLAS threads | ms | GFLOP/s |", "| ---: | ---: | ---: |"]
    for threads in (os.cpu_count() or 1, 1):
        with threadpool_limits(threads):
            step()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows.append(f"| {threads} | {1000 * seconds:.0f} | {flops / seconds / 1e9:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", metavar="ARCH", help="profile ARCH layer by layer")
    parser.add_argument("--products", action="store_true",
                        help="time ResNet20's convolution products alone")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data", choices=["fashion", "random"], default="fashion")
    args = parser.parse_args()
    if not (args.layers or args.products):
        parser.error("ask for --layers ARCH, --products or both")
    print(f"Measured by `python benchmarks/numpy_profile.py` on {time.strftime('%Y-%m-%d')}: "
          f"{cpu_model()} ({os.cpu_count()} CPUs), numpy {np.__version__}.\n")
    if args.layers:
        print("\n".join(layer_profile(args.layers, args.steps, args.data)) + "\n")
    if args.products:
        print("\n".join(product_floor(max(args.steps // 4, 3))))


if __name__ == "__main__":
    main()
