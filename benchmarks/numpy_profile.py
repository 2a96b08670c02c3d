"""Where the NumPy backend's training step spends its time.

Three reports, on 1x28x28 images:

- ``--layers ARCH`` times each layer's forward and backward pass of a training step
  of ARCH (``simple``, ``lenet``...), in the order training runs them, median of
  ``--steps`` steps of 128 images on Fashion-MNIST (or random images with ``--data
  random``);
- ``--shards ARCH...`` times one training step of each ARCH whole and cut into one
  shard per core (``backends/numpy/shards.py``), at batches of 32 to 256;
- ``--products`` times only the matrix products of ResNet20's 19 convolutions
  (forward, weight gradient and input gradient, on whole-batch matrices), the floor
  under any im2col-style step of that network with the BLAS NumPy uses;
- ``--windows`` times, on one core, a convolution and the 2x2 max-pool after it
  predicted as two steps and as one convolution of pooling windows, over a grid of
  kernels, channels and map sizes, and says where ``functional.pools_in_windows``
  (the rule prediction follows) picks the slower of the two on this CPU.

Usage::

    .venv/bin/python benchmarks/numpy_profile.py --layers simple
    .venv/bin/python benchmarks/numpy_profile.py --shards lenet simple auto resnet20
    .venv/bin/python benchmarks/numpy_profile.py --products
    .venv/bin/python benchmarks/numpy_profile.py --windows

Measure alone: another busy process on the machine changes every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from functools import partial

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


def shard_profile(archs: list[str], steps: int, data: str,
                  batches: tuple[int, ...] = (32, 64, 128, 256)) -> list[str]:
    """One training step whole (BLAS on all cores, shifted convolutions' blocks on
    threads, as the backend trains batches too small to shard) against the same step
    in one shard per core (BLAS on one thread a shard); the two take turns."""
    from threadpoolctl import threadpool_limits

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.backends.numpy.layers import ShiftedConv2d
    from sklearn_cnn.backends.numpy.shards import Shards, shard_count
    from sklearn_cnn.backends.numpy.threads import block_threads

    workers = os.cpu_count() or 1
    X, y = _images(max(batches) * (steps + 1), data)
    rows = [f"**One training step, whole or in {workers} shards** (ms, median of "
            f"{steps} steps, 3 turns each):", "",
            "| arch | batch | whole | shards | shards / whole | backend shards |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for arch in archs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = CNNClassifier(arch, backend="numpy", max_iter=1, augment=None,
                                  random_state=0).fit(X[:256], y[:256]).model_
        shifted = any(isinstance(layer, ShiftedConv2d) for layer in model.all_layers())
        for batch in batches:
            times = {"whole": [], "shards": []}
            for _ in range(3):
                with threadpool_limits(1 if shifted else workers), \
                        block_threads(workers if shifted else 1):
                    times["whole"] += _step_times(partial(model.forward, training=True),
                                                  model.backward, X, y, batch, steps)
                with threadpool_limits(1), Shards(model, workers) as shards:
                    times["shards"] += _step_times(shards.forward, shards.backward, X, y,
                                                   batch, steps)
            whole, sharded = (1000 * statistics.median(times[k]) for k in times)
            count = shard_count(batch, model.widest_activation, workers)
            rows.append(f"| {arch} | {batch} | {whole:.1f} | {sharded:.1f} | "
                        f"{sharded / whole:.2f} | {count} |")
    return rows


def _step_times(forward, backward, X, y, batch: int, steps: int) -> list[float]:
    """Seconds of each of ``steps`` training steps (``forward(x)``, the loss,
    ``backward(dout)``), after one more that faults the memory in."""
    from sklearn_cnn.backends.numpy.losses import softmax_cross_entropy

    times = []
    for step in range(steps + 1):
        x, target = X[batch * step:batch * (step + 1)], y[batch * step:batch * (step + 1)]
        start = time.perf_counter()
        _, dout = softmax_cross_entropy(forward(x), target)
        backward(dout)
        times.append(time.perf_counter() - start)
    return times[1:]


def _images(n: int, data: str) -> tuple[np.ndarray, np.ndarray]:
    """n standardized 1x28x28 images and their labels."""
    if data == "random":
        rng = np.random.default_rng(0)
        return rng.standard_normal((n, 1, 28, 28), dtype=np.float32), np.arange(n) % 10
    from sklearn_cnn.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X = X[:n].astype(np.float32)
    return ((X - X.mean()) / X.std()).reshape(-1, 1, 28, 28), y[:n]


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
            ms = _median_ms(step, repeats)
        rows.append(f"| {threads} | {ms:.0f} | {flops / ms / 1e6:.0f} |")
    return rows


def window_grid(repeats: int, images: int = 64) -> list[str]:
    """Conv + 2x2 max-pool (``conv_in_blocks``, then the halving pool) against the
    same as one convolution of pooling windows, one core, random float32 images."""
    from threadpoolctl import threadpool_limits

    from sklearn_cnn.backends.numpy.functional import pools_in_windows

    rng = np.random.default_rng(0)
    np.empty(2**22, dtype=np.float32)  # warm the allocator: see _median_ms
    rows = [f"**A convolution and its 2x2 max-pool in prediction, {images} images, one "
            f"core** (ms, median of {repeats}; *rule*: what "
            "`pools_in_windows` picks):", "",
            "| kernel | side | in | out | conv + pool | windows | windows / conv + pool "
            "| rule |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    slower = []
    with threadpool_limits(1):
        for k in (3, 4, 5, 7):
            for side in (28, 14):
                for c in (1, 4, 8, 16, 32, 64):
                    for o in (16, 32, 64, 128):
                        x = rng.random((c, side, side, images), dtype=np.float32
                                       ).transpose(3, 0, 1, 2)  # laid out as a conv leaves it
                        weight = rng.standard_normal((o, c, k, k), dtype=np.float32)
                        bias = rng.standard_normal(o, dtype=np.float32)
                        before, after = (_median_ms(partial(f, x, weight, bias), repeats)
                                         for f in (_conv_then_pool, _conv_of_windows))
                        rule = pools_in_windows(c, o, (k, k), (1, 1))
                        if rule != (after < before):
                            slower.append(max(before, after) / min(before, after))
                        rows.append(f"| {k}x{k} | {side} | {c} | {o} | {before:.3f} | "
                                    f"{after:.3f} | {after / before:.2f} | "
                                    f"{'windows' if rule else 'conv + pool'} |")
    worst = f"; at worst {max(slower):.2f}x the faster" if slower else ""
    rows += ["", f"The rule picks the slower of the two in {len(slower)} of "
             f"{len(rows) - 4} cases{worst}."]
    return rows


def _conv_then_pool(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A 'same' convolution and the 2x2 max-pool after it, as two prediction steps."""
    from sklearn_cnn.backends.numpy.functional import conv_in_blocks
    from sklearn_cnn.backends.numpy.layers import HalvingMaxPool2d

    o, _, k, _ = weight.shape
    out = conv_in_blocks(x, weight.reshape(o, -1), bias, (k, k), (1, 1), (k // 2,) * 4)
    return HalvingMaxPool2d().predict(out.transpose(3, 0, 1, 2))


def _conv_of_windows(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The same as one prediction step: a convolution of the pooling windows."""
    from sklearn_cnn.backends.numpy.functional import conv_in_blocks, window_weights

    k = weight.shape[2]
    windows, biases, kernel, stride = window_weights(weight, bias, (1, 1))
    return conv_in_blocks(x, windows, biases, kernel, stride, (k // 2,) * 4,
                          window_max=True)


def _median_ms(function, repeats: int) -> float:
    """Median milliseconds of ``function()`` after one call that faults its memory
    in (warm the allocator first where arrays are small: a fresh process maps and
    faults in every array over 128 KB, which would time first touches, not work)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", metavar="ARCH", help="profile ARCH layer by layer")
    parser.add_argument("--products", action="store_true",
                        help="time ResNet20's convolution products alone")
    parser.add_argument("--shards", metavar="ARCH", nargs="+",
                        help="time ARCH's training steps whole and in shards")
    parser.add_argument("--windows", action="store_true",
                        help="time convolution + max-pool as two steps and as windows")
    parser.add_argument("--images", type=int, default=64,
                        help="images a --windows product takes (default 64)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data", choices=["fashion", "random"], default="fashion")
    args = parser.parse_args()
    if not (args.layers or args.products or args.shards or args.windows):
        parser.error("ask for --layers ARCH, --shards ARCH..., --products, --windows "
                     "or several")
    print(f"Measured by `python benchmarks/numpy_profile.py` on {time.strftime('%Y-%m-%d')}: "
          f"{cpu_model()} ({os.cpu_count()} CPUs), numpy {np.__version__}.\n")
    if args.layers:
        print("\n".join(layer_profile(args.layers, args.steps, args.data)) + "\n")
    if args.shards:
        print("\n".join(shard_profile(args.shards, args.steps, args.data)) + "\n")
    if args.products:
        print("\n".join(product_floor(max(args.steps // 4, 3))) + "\n")
    if args.windows:
        print("\n".join(window_grid(max(args.steps, 5), args.images)))


if __name__ == "__main__":
    main()
