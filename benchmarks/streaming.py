"""Training beyond memory: one epoch on a memory-mapped file of a million images.

Writes the Fashion-MNIST training images, repeated to ``--images`` (default
1,000,000: 784 MB of ``uint8`` on disk, 3.1 GB as float32), to a ``.npy`` file,
then measures, each in a fresh process and alone:

- ``memmap``: one LeNet epoch (NumPy backend) on ``np.load(path, mmap_mode="r")``,
  read batch by batch;
- ``memory``: the same epoch on the 60,000 training images held in memory as
  ``uint8`` (converted to float32 whole, as every in-memory fit is).

For each: peak resident memory (``VmHWM``), the resident memory before the fit
(imports and data), fit seconds and images per second.

    .venv/bin/python benchmarks/streaming.py [--images 1000000] [--backend numpy]

Measure alone: two numeric processes on a 2-core machine slow each other.
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

from machine import cpu_model, rss_mb


def measure(task: dict) -> dict:
    import numpy as np

    from sklearn_cnn import CNNClassifier

    if task["how"] == "memmap":
        X = np.load(task["path"], mmap_mode="r")
        y = np.load(task["labels"])
    else:
        X, y = training_images(task["data"])
    before = rss_mb()
    clf = CNNClassifier("lenet", backend=task["backend"], max_iter=1, batch_size=128,
                        random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - start
    return {"images": len(y), "seconds": seconds, "per_s": len(y) / seconds,
            "rss_before_mb": before,
            "peak_rss_mb": rss_mb("VmHWM")}


def training_images(kind: str):
    """The 60,000 Fashion-MNIST training images as raw uint8 pixels (or, with
    ``kind="random"``, 600 random ones: a quick check that the script runs)."""
    import numpy as np

    if kind == "random":
        rng = np.random.default_rng(0)
        return (rng.random((600, 1, 28, 28)) * 255).astype(np.uint8), rng.integers(0, 3, 600)
    from sklearn_cnn.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    return np.round(X * 255).astype(np.uint8), y  # the raw pixels, as in the file


def write_memmap(n: int, folder: Path, kind: str) -> tuple[Path, Path]:
    import numpy as np

    X, y = training_images(kind)
    path, labels = folder / "images.npy", folder / "labels.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, *X.shape[1:]))
    for begin in range(0, n, len(X)):
        out[begin:begin + len(X)] = X[:n - begin]
    out.flush()
    del out
    np.save(labels, np.resize(y, n))
    return path, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    parser.add_argument("--data", choices=["fashion", "random"], default="fashion")
    parser.add_argument("--folder", help="where to write the file (default: a temporary "
                                         "folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return
    import numpy as np
    import sklearn

    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        path, labels = write_memmap(args.images, Path(scratch), args.data)
        size = path.stat().st_size / 1e6
        print(f"Measured by `python benchmarks/streaming.py --images {args.images} --backend "
              f"{args.backend}` on {time.strftime('%Y-%m-%d')}: {cpu_model()} "
              f"({os.cpu_count()} CPUs), Python {platform.python_version()}, numpy "
              f"{np.__version__}, scikit-learn {sklearn.__version__}. The file: "
              f"{size:,.0f} MB of uint8.\n")
        print("| one LeNet epoch on | images | RSS before fit (MB) | peak RSS (MB) | "
              "fit seconds | images/s |\n| --- | ---: | ---: | ---: | ---: | ---: |")
        results = {}
        for how in ("memmap", "memory"):
            task = dict(how=how, path=str(path), labels=str(labels), backend=args.backend,
                        data=args.data)
            out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)],
                                 capture_output=True, text=True, check=True).stdout
            result = results[how] = json.loads(out.splitlines()[-1])
            label = {"memmap": "`np.load(path, mmap_mode='r')`, read batch by batch",
                     "memory": "the training images in memory, `uint8`"}[how]
            print(f"| {label} | {result['images']:,} | {result['rss_before_mb']:,.0f} | "
                  f"{result['peak_rss_mb']:,.0f} | {result['seconds']:.1f} | "
                  f"{result['per_s']:,.0f} |", flush=True)
        ratio = results["memmap"]["peak_rss_mb"] / results["memory"]["peak_rss_mb"]
        print(f"\npeak memory, memory-mapped {args.images:,} against "
              f"{results['memory']['images']:,} in memory: {ratio:.2f} times")


if __name__ == "__main__":
    main()
