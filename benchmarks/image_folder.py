"""Training from a folder of image files against training from arrays.

Writes the Fashion-MNIST training images as PNG files, one sub-folder per class,
then measures, each in a fresh process:

- ``arrays``: ``CNNClassifier().fit(X, y)`` on the arrays ``load_fashion_mnist`` gives;
- ``folder``: ``load_image_folder(folder)`` (decoding every PNG), then the same fit;
- ``pipeline``: ``make_pipeline(ImageLoader(), CNNClassifier()).fit(paths, y)`` on the
  file paths of ``load_image_folder(folder, load_content=False)``;
- ``lazy``: the same with ``ImageLoader(lazy=True)``: the files of each batch are
  decoded while the one before trains, every epoch again.

For each: images decoded per second, fit seconds, peak resident memory (MB), test
accuracy on the 10,000 test images (arrays).

    .venv/bin/python benchmarks/image_folder.py [--images 60000] [--epochs N]
        [--backend numpy] [--how arrays folder pipeline lazy]

With ``--epochs 1 --how arrays lazy`` it compares the training throughput (images
per second of the whole fit) from arrays and through the lazy loader.

``--data random`` uses random images instead of Fashion-MNIST (a quick check that it
runs). Measure alone: two numeric processes on a 2-core machine slow each other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import rss_mb


def data(kind: str, n: int):
    import numpy as np

    if kind == "random":
        rng = np.random.default_rng(0)
        X = (rng.random((n + 100, 1, 28, 28)) * 255).astype(np.uint8)
        y = rng.integers(0, 3, n + 100)
        return X[:n], y[:n], X[n:], y[n:]
    from sklearn_cnn.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    X, X_test = (np.round(a * 255).astype(np.uint8) for a in (X, X_test))  # the raw pixels
    return X[:n], y[:n], X_test, y_test


def write_folder(X, y, folder: Path) -> float:
    """PNG files folder/<class>/<index>.png; returns the seconds it took."""
    from PIL import Image

    start = time.perf_counter()
    for label in sorted(set(y.tolist())):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(X, y, strict=True)):
        Image.fromarray(image[0]).save(folder / f"class{label}" / f"{index:05d}.png")
    return time.perf_counter() - start


def measure(task: dict) -> dict:
    import numpy as np
    from sklearn.pipeline import make_pipeline

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.datasets import load_image_folder
    from sklearn_cnn.preprocessing import ImageLoader

    X, y, X_test, y_test = data(task["data"], task["images"])
    params = {"random_state": 0, "backend": task["backend"]}
    if task["epochs"] is not None:
        params["max_iter"] = task["epochs"]
    decode = None
    start = time.perf_counter()
    if task["how"] == "arrays":
        model = CNNClassifier(**params).fit(X, y)
    elif task["how"] == "folder":
        bunch = load_image_folder(task["folder"])
        decode = len(bunch.target) / (time.perf_counter() - start)
        model = CNNClassifier(**params).fit(bunch.data, bunch.target)
    else:
        files = load_image_folder(task["folder"], load_content=False)
        loader = ImageLoader(lazy=task["how"] == "lazy")
        model = make_pipeline(loader, CNNClassifier(**params))
        model.fit(files.filenames, files.target)  # decoding inside; timed again below
    seconds = time.perf_counter() - start
    if task["how"] in ("pipeline", "lazy"):
        begin = time.perf_counter()
        np.asarray(loader.transform(files.filenames))
        decode = len(files.filenames) / (time.perf_counter() - begin)
        test = model[-1]
    else:
        test = model
    return {"fit_seconds": seconds, "decoded_per_s": decode,
            "trained_per_s": task["images"] * test.n_iter_ / seconds,
            "accuracy": test.score(X_test, y_test),
            "peak_rss_mb": rss_mb("VmHWM")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=None,
                        help="max_iter (default: CNNClassifier's own, 'auto')")
    parser.add_argument("--data", choices=["fashion", "random"], default="fashion")
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    parser.add_argument("--how", nargs="+", default=["arrays", "folder", "pipeline", "lazy"],
                        choices=["arrays", "folder", "pipeline", "lazy"])
    parser.add_argument("--folder", help="where to write the PNG files (default: a "
                                         "temporary folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.folder or scratch)
        X, y, _, _ = data(args.data, args.images)
        written = write_folder(X, y, folder)
        size = sum(f.stat().st_size for f in folder.rglob("*.png")) / 2**20
        print(f"wrote {len(X):,} PNG files ({size:.0f} MB) in {written:.1f} s "
              f"({len(X) / written:,.0f} files/s)\n")
        print(f"backend={args.backend}\n")
        print("| from | images decoded/s | fit seconds (decoding included) | images trained/s "
              "| peak RSS (MB) | test accuracy |\n| --- | ---: | ---: | ---: | ---: | ---: |")
        for how in args.how:
            task = dict(how=how, data=args.data, images=args.images, epochs=args.epochs,
                        folder=str(folder), backend=args.backend)
            out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)],
                                 capture_output=True, text=True, check=True).stdout
            result = json.loads(out.splitlines()[-1])
            decoded = result["decoded_per_s"]
            label = {"arrays": "arrays (`load_fashion_mnist`)",
                     "folder": "`load_image_folder(folder)`, then fit",
                     "pipeline": "`make_pipeline(ImageLoader(), CNNClassifier())` on paths",
                     "lazy": "the same with `ImageLoader(lazy=True)`"}
            print(f"| {label[how]} | {'-' if decoded is None else f'{decoded:,.0f}'} | "
                  f"{result['fit_seconds']:.1f} | {result['trained_per_s']:,.0f} | "
                  f"{result['peak_rss_mb']:,.0f} | "
                  f"{result['accuracy']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
