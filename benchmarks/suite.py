"""The benchmark suite: both backends against plain PyTorch, skorch and MLPClassifier.

One command measures everything side by side and writes a Markdown report,
``benchmarks/RESULTS.md``, and the same tables as reStructuredText,
``benchmarks/RESULTS.rst``, which the documentation's benchmarks page includes:

    .venv/bin/python benchmarks/suite.py [--repeats 3] [--epochs 15] [--quick]
    .venv/bin/python benchmarks/suite.py --render   # RESULTS.rst from RESULTS.md again

1. **LeNet on Fashion-MNIST** (60,000 training, 10,000 test images): training
   images/s, inference images/s (``predict_proba`` on the 10,000 test images), peak
   resident memory and test accuracy of the NumPy backend, the torch backend, a plain
   PyTorch loop on the same network, skorch's ``NeuralNetClassifier`` on the same
   module, and ``MLPClassifier`` (one hidden layer of 100) as the non-CNN baseline.
2. **Throughput ratios** to the plain PyTorch loop for ``lenet``, ``simple`` and
   ``resnet20``, training and inference.
3. **Scaling**: seconds per epoch and peak memory as the batch size, the image size
   and the number of training images grow, for both backends.

Every measurement runs in a fresh process (peak memory is per process), the
contenders take turns within each repetition, and the report gives the median and
the spread (min-max) of the repetitions. Same batch size (128), optimizer (Adam,
learning rate 0.001, no L2 penalty), initial weights and threads (2) for all.
Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package; the suite
installs it when it can (root with apt-get) and otherwise says how.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

THREADS = 2
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, str(THREADS))

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def _machine():
    """benchmarks/machine.py, loaded by its path: this file is also loaded by path
    (the tests), and putting benchmarks/ on ``sys.path`` would let its scripts
    shadow packages of the same name."""
    spec = importlib.util.spec_from_file_location("benchmarks_machine", HERE / "machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MACHINE = _machine()
cpu_model, rss_mb = _MACHINE.cpu_model, _MACHINE.rss_mb

REPORT = HERE / "RESULTS.md"
REPORT_RST = HERE / "RESULTS.rst"
BATCH = 128
LR = 0.001


# --------------------------------------------------------------------------- data
def ensure_fashion_mnist() -> None:
    from sklearn_cnn.datasets import DEBIAN_FASHION_MNIST

    if (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists() or os.environ.get(
            "SKLEARN_CNN_DATA"):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"],
                       check=True)
        return
    sys.exit("Fashion-MNIST is missing: run `sudo apt-get install dataset-fashion-mnist` "
             "(Debian/Ubuntu) or put its IDX files in $SKLEARN_CNN_DATA")


def load_data(task: dict):
    """(X_train, y_train, X_test, y_test) for a task: Fashion-MNIST, or random images
    (``"data": "random"``, for the smoke test), resized by pixel repetition to
    ``task["size"]`` px when it is a multiple of 28."""
    if task.get("data") == "random":
        rng = np.random.default_rng(0)
        n, m = task["images"], task.get("test_images", 64)
        X = rng.random((n + m, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, n + m)
        X_train, y_train, X_test, y_test = X[:n], y[:n], X[n:], y[n:]
    else:
        from sklearn_cnn.datasets import load_fashion_mnist

        X_train, y_train = load_fashion_mnist(subset="train", return_X_y=True)
        X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
        X_train, y_train = X_train[:task["images"]], y_train[:task["images"]]
        X_test, y_test = X_test[:task.get("test_images", 10_000)], y_test[
            :task.get("test_images", 10_000)]
    factor = task.get("size", 28) // 28
    if factor > 1:
        X_train = X_train.repeat(factor, axis=2).repeat(factor, axis=3)
        X_test = X_test.repeat(factor, axis=2).repeat(factor, axis=3)
    return X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64)


# --------------------------------------------------------------------- contenders
def _initial(arch: str, shape: tuple):
    from sklearn_cnn._weights import init_weights
    from sklearn_cnn.architectures import build_architecture

    specs, _ = build_architecture(arch, shape, 10)
    return specs, init_weights(specs, shape, np.random.default_rng(0))


def run_estimator(task, X, y, X_test, y_test):
    from sklearn_cnn import CNNClassifier

    clf = CNNClassifier(task["arch"], backend=task["contender"], max_iter=task["epochs"],
                        batch_size=task["batch_size"], learning_rate_init=LR, alpha=0.0,
                        random_state=0, n_iter_no_change=10**6,
                        # the plain loop's recipe, so both do the same work per step
                        learning_rate="constant", augment=None, label_smoothing=0.0)
    start = time.perf_counter()
    clf.fit(X, y)
    train = time.perf_counter() - start
    start = time.perf_counter()
    proba = clf.predict_proba(X_test)
    return train, time.perf_counter() - start, proba


def _torch_module(task, shape):
    import torch

    from sklearn_cnn.backends.torch import build_module, load_canonical

    torch.manual_seed(0)
    specs, weights = _initial(task["arch"], shape)
    module = build_module(specs, shape)  # plain nn.Sequential of torch.nn layers
    load_canonical(module, weights)
    return module


def run_plain_torch(task, X, y, X_test, y_test):
    """A hand-written PyTorch loop: shuffle, slice, forward, backward, step."""
    import torch
    from torch import nn

    module = _torch_module(task, X.shape[1:])
    optimizer = torch.optim.Adam(module.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    module.train()
    for _ in range(task["epochs"]):
        order = torch.randperm(len(Xt))
        for begin in range(0, len(Xt), task["batch_size"]):
            batch = order[begin:begin + task["batch_size"]]
            optimizer.zero_grad()
            loss_fn(module(Xt[batch]), yt[batch]).backward()
            optimizer.step()
    train = time.perf_counter() - start
    start = time.perf_counter()
    module.eval()
    with torch.inference_mode():
        Xv = torch.from_numpy(X_test)
        proba = torch.cat([module(Xv[i:i + 512]).softmax(1) for i in range(0, len(Xv), 512)])
    return train, time.perf_counter() - start, proba.numpy()


def run_skorch(task, X, y, X_test, y_test):
    """skorch's NeuralNetClassifier with its defaults (DataLoader batches) on the
    same module."""
    import torch
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(_torch_module(task, X.shape[1:]),
                              criterion=torch.nn.CrossEntropyLoss,
                              optimizer=torch.optim.Adam, lr=LR,
                              batch_size=task["batch_size"], max_epochs=task["epochs"],
                              train_split=None, iterator_train__shuffle=True, verbose=0)
    start = time.perf_counter()
    net.fit(X, y)
    train = time.perf_counter() - start
    start = time.perf_counter()
    proba = net.predict_proba(X_test)
    return train, time.perf_counter() - start, proba


def run_mlp(task, X, y, X_test, y_test):
    """MLPClassifier on the flattened pixels: one hidden layer of 100 ReLUs."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier((100,), batch_size=task["batch_size"], learning_rate_init=LR,
                        alpha=0.0, max_iter=task["epochs"], n_iter_no_change=10**6,
                        random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X.reshape(len(X), -1), y)
    train = time.perf_counter() - start
    start = time.perf_counter()
    proba = mlp.predict_proba(X_test.reshape(len(X_test), -1))
    return train, time.perf_counter() - start, proba


CONTENDERS = {"numpy": run_estimator, "torch": run_estimator,
              "plain_torch": run_plain_torch, "skorch": run_skorch, "mlp": run_mlp}
LABELS = {"numpy": "sklearn-cnn, NumPy backend", "torch": "sklearn-cnn, torch backend",
          "plain_torch": "plain PyTorch loop", "skorch": "skorch NeuralNetClassifier",
          "mlp": "MLPClassifier (100 hidden)"}


def measure(task: dict) -> dict:
    """Run one task in this process and return its figures."""
    if task["contender"] != "numpy" and task["contender"] != "mlp":
        import torch

        torch.set_num_threads(THREADS)
    X, y, X_test, y_test = load_data(task)
    run = CONTENDERS[task["contender"]]
    # warm-up on 256 images: one-time costs (torch's first kernels, thread pools,
    # lazy imports) are not the per-epoch cost being measured
    run(dict(task, epochs=1), X[:256], y[:256], X_test[:256], y_test[:256])
    train, infer, proba = run(task, X, y, X_test, y_test)
    return {"train_images_per_s": task["epochs"] * len(X) / train,
            "seconds_per_epoch": train / task["epochs"],
            "infer_images_per_s": len(X_test) / infer,
            "accuracy": float(np.mean(np.asarray(proba).argmax(axis=1) == y_test)),
            "peak_rss_mb": rss_mb("VmHWM")}


def measure_in_subprocess(task: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


# ------------------------------------------------------------------------- report
def spread(values: list[float], fmt: str) -> str:
    middle = format(statistics.median(values), fmt)
    if len(values) == 1:
        return middle
    return f"{middle} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def rounds(tasks: list[dict], repeats: int, log) -> list[list[dict]]:
    """Run every task ``repeats`` times, the tasks taking turns; results per task."""
    results = [[] for _ in tasks]
    for repeat in range(repeats):
        for i, task in enumerate(tasks):
            time.sleep(0.5)  # let the previous process's threads go quiet
            results[i].append(measure_in_subprocess(task))
            log(f"  [{repeat + 1}/{repeats}] {task} -> {results[i][-1]}")
    return results


def main_table(args, log) -> list[str]:
    contenders = ["numpy", "torch", "plain_torch", "skorch", "mlp"]
    tasks = [dict(contender=c, arch="lenet", epochs=args.epochs, images=args.images,
                  batch_size=BATCH, data=args.data) for c in contenders]
    results = rounds(tasks, args.repeats, log)
    plain = statistics.median(r["train_images_per_s"] for r in results[2])
    plain_infer = statistics.median(r["infer_images_per_s"] for r in results[2])
    lines = [f"**LeNet on Fashion-MNIST**: {args.images:,} training images, {args.epochs} "
             f"epochs, batch {BATCH}, Adam (lr {LR}), {THREADS} threads; inference = "
             "`predict_proba` on the 10,000 test images. Median (min-max) of "
             f"{args.repeats} fresh processes.", "",
             "| contender | training images/s | vs plain PyTorch | inference images/s | "
             "vs plain PyTorch | peak RSS (MB) | test accuracy |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for contender, runs in zip(contenders, results, strict=True):
        train = [r["train_images_per_s"] for r in runs]
        infer = [r["infer_images_per_s"] for r in runs]
        lines.append(
            f"| {LABELS[contender]} | {spread(train, ',.0f')} | "
            f"{statistics.median(train) / plain:.2f} | {spread(infer, ',.0f')} | "
            f"{statistics.median(infer) / plain_infer:.2f} | "
            f"{spread([r['peak_rss_mb'] for r in runs], ',.0f')} | "
            f"{spread([r['accuracy'] for r in runs], '.4f')} |")
    return lines


def ratio_table(args, log) -> list[str]:
    archs = {"lenet": args.ratio_images, "simple": args.ratio_images,
             "resnet20": max(args.ratio_images // 4, 256)}
    lines = [f"**Throughput against the plain PyTorch loop, per architecture** (1x28x28 "
             f"Fashion-MNIST, 1 epoch of batch {BATCH}; training on the first N images, "
             f"inference on 10,000; median of {args.repeats}).", "",
             "| arch | N | NumPy train | NumPy inference | torch backend train | "
             "torch backend inference |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for arch, images in archs.items():
        tasks = [dict(contender=c, arch=arch, epochs=1, images=images, batch_size=BATCH,
                      data=args.data) for c in ("numpy", "torch", "plain_torch")]
        results = rounds(tasks, args.repeats, log)
        med = [{k: statistics.median(r[k] for r in runs) for k in runs[0]} for runs in results]
        lines.append(
            f"| {arch} | {images:,} | "
            f"{med[0]['train_images_per_s'] / med[2]['train_images_per_s']:.2f} | "
            f"{med[0]['infer_images_per_s'] / med[2]['infer_images_per_s']:.2f} | "
            f"{med[1]['train_images_per_s'] / med[2]['train_images_per_s']:.2f} | "
            f"{med[1]['infer_images_per_s'] / med[2]['infer_images_per_s']:.2f} |")
    return lines


def scaling_table(args, log) -> list[str]:
    base = dict(arch="lenet", epochs=1, images=args.scaling_images, batch_size=BATCH,
                size=28, data=args.data, test_images=1000)
    axes = {"batch size": ("batch_size", [32, 64, 128, 256, 512]),
            "image side (px)": ("size", [28, 56, 112]),
            "training images": ("images", [args.scaling_images // 4,
                                           args.scaling_images // 2, args.scaling_images,
                                           args.scaling_images * 2])}
    lines = [f"**Scaling** (LeNet, 1 epoch; {args.scaling_images:,} images unless varied, "
             f"batch {BATCH}, 28 px; larger images are Fashion-MNIST upsampled by pixel "
             f"repetition; seconds per epoch and peak RSS in MB, median of "
             f"{args.scaling_repeats}).", "",
             "| varied | value | NumPy s/epoch | NumPy µs/image/pixel | NumPy peak MB | "
             "torch s/epoch | torch µs/image/pixel | torch peak MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, (key, values) in axes.items():
        for value in values:
            tasks = [dict(base, contender=c, **{key: value}) for c in ("numpy", "torch")]
            results = rounds(tasks, args.scaling_repeats, log)
            cells = []
            for runs, task in zip(results, tasks, strict=True):
                seconds = statistics.median(r["seconds_per_epoch"] for r in runs)
                per_pixel = seconds / (task["images"] * task["size"] ** 2) * 1e6
                peak = statistics.median(r["peak_rss_mb"] for r in runs)
                cells += [f"{seconds:.2f}", f"{per_pixel:.4f}", f"{peak:,.0f}"]
            lines.append(f"| {label} | {value:,} | " + " | ".join(cells) + " |")
    return lines


def big_predict_row(args, log) -> list[str]:
    """predict_proba on 100,000 images: memory stays bounded (fixed-size batches)."""
    lines = []
    for n in (10_000, 100_000):
        task = dict(contender="numpy", arch="lenet", epochs=1, images=2000, batch_size=BATCH,
                    data="random", test_images=n)
        result = measure_in_subprocess(task)
        log(f"  predict {n}: {result}")
        lines.append(f"| {n:,} | {result['infer_images_per_s']:,.0f} | "
                     f"{result['peak_rss_mb']:,.0f} |")
    return ["**Inference memory** (NumPy backend, LeNet, `predict_proba` on random "
            "1x28x28 float32 images after a 2,000-image fit; the input itself is 31 MB "
            "per 10,000 images).", "", "| images | images/s | peak RSS (MB) |",
            "| ---: | ---: | ---: |", *lines]


def latency_table(args, log) -> list[str]:
    """``benchmarks/latency.py`` in a fresh process: one image and 1,000 images on
    both backends, the plain torch module, onnxruntime and MLPClassifier."""
    log("latency: benchmarks/latency.py")
    quick = (["--data", "random", "--calls", "3", "--train", "60", "--epochs", "1",
              "--many", "20"] if args.data == "random" else [])
    out = subprocess.run([sys.executable, str(HERE / "latency.py"), *quick],
                         capture_output=True, text=True, check=True).stdout
    tables = out.strip().splitlines()[2:]  # after its own "Measured by" line
    return ["**Prediction latency** (`benchmarks/latency.py`: models fitted on "
            "Fashion-MNIST, median of repeated calls, in ms):", "", *tables]


def write_report(sections: list[list[str]], args, save: bool = True) -> str:
    import sklearn
    import torch

    header = [f"Measured by `{' '.join(['python', *sys.argv])}` on "
              f"{time.strftime('%Y-%m-%d')}: {cpu_model()} ({platform.machine()}, "
              f"{os.cpu_count()} CPUs), Python {platform.python_version()}, numpy "
              f"{np.__version__}, torch {torch.__version__}, scikit-learn "
              f"{sklearn.__version__}.", ""]
    text = "\n".join(header + [line for s in sections for line in [*s, ""]]).rstrip() + "\n"
    if not save:
        return text
    REPORT.write_text(text)
    REPORT_RST.write_text(to_rst(text))
    return text


def to_rst(markdown: str) -> str:
    """The report's Markdown (paragraphs, ``**bold**``, `` `code` ``, pipe tables) as
    reStructuredText: each table a ``csv-table``."""
    out, rows = [], []

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    def inline(text: str) -> str:
        return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)

    def flush() -> None:
        if rows:
            quoted = [", ".join('"' + inline(c).replace('"', '""') + '"' for c in row)
                      for row in rows[1:]]
            out.extend([".. csv-table::", "   :header: " + ", ".join(
                '"' + c + '"' for c in rows[0]), "", *("   " + q for q in quoted), ""])
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            if not set(line) <= set("|-: "):  # the alignment row says nothing here
                rows.append(cells(line))
            continue
        flush()
        out.append(inline(line))
    flush()
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--ratio-images", type=int, default=10_000)
    parser.add_argument("--scaling-images", type=int, default=5_000)
    parser.add_argument("--scaling-repeats", type=int, default=2)
    parser.add_argument("--only", choices=["main", "ratios", "scaling", "predict", "latency"],
                        action="append", help="run only these sections")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes on random data: checks the suite runs")
    parser.add_argument("--render", action="store_true",
                        help="write RESULTS.rst from RESULTS.md again, measuring nothing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render:
        REPORT_RST.write_text(to_rst(REPORT.read_text()))
        return
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return
    args.data = "fashion"
    if args.quick:
        args.data, args.repeats, args.scaling_repeats, args.epochs = "random", 1, 1, 1
        args.images, args.ratio_images, args.scaling_images = 512, 256, 256
    else:
        ensure_fashion_mnist()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sections = {"main": main_table, "ratios": ratio_table, "scaling": scaling_table,
                "predict": big_predict_row, "latency": latency_table}
    chosen = args.only or list(sections)
    # a quick or partial run prints its tables but leaves the report alone
    text = write_report([sections[name](args, log) for name in chosen], args,
                        save=not args.quick and args.only is None)
    print(text)


if __name__ == "__main__":
    main()
