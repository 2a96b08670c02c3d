"""Prediction latency: one image, and 1,000 images, on every way to run a fitted CNN.

A LeNet and the default network are fitted on Fashion-MNIST (``--train`` images,
``--epochs`` epochs: the weights do not change the speed), then timed alone, each
call ``--calls`` times (median):

- ``predict`` of the estimator on the NumPy backend and on the torch backend;
- the torch backend's own module called directly under ``torch.inference_mode()``
  (what the network itself costs in PyTorch);
- the exported ONNX graph in onnxruntime (2 intra-op threads);
- ``MLPClassifier.predict`` of one flat row (scikit-learn's own input checking and a
  small network: the floor a scikit-learn user knows).

    .venv/bin/python benchmarks/latency.py [--calls 300] [--train 10000] [--epochs 2]

Measure alone: two numeric processes on a 2-core machine slow each other.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from machine import cpu_model


def median_ms(run, calls: int) -> float:
    run()  # warm: first calls build caches (oneDNN primitives, im2col buffers)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def contenders(clf, X_one: np.ndarray, X_many: np.ndarray) -> dict:
    """name -> (run on one image, run on many) for a fitted NumPy-backend ``clf``."""
    import onnxruntime as ort
    import torch
    from skl2onnx import to_onnx

    import sklearn_cnn.onnx  # noqa: F401  (registers the converters)
    from sklearn_cnn.onnx import OPSET

    on_torch = clf.to_backend("torch")
    module = on_torch.model_.module_.eval()

    def plain(X):
        with torch.inference_mode():
            return module(torch.from_numpy(X))

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    graph = to_onnx(clf, X_one, target_opset=OPSET, options={"zipmap": False})
    session = ort.InferenceSession(graph.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return {
        "`predict`, NumPy backend": (lambda: clf.predict(X_one), lambda: clf.predict(X_many)),
        "`predict`, torch backend": (lambda: on_torch.predict(X_one),
                                     lambda: on_torch.predict(X_many)),
        "the same torch module, `inference_mode`": (lambda: plain(X_one),
                                                   lambda: plain(X_many)),
        "onnxruntime, exported graph": (lambda: session.run(None, {name: X_one}),
                                        lambda: session.run(None, {name: X_many})),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--data", choices=["fashion", "random"], default="fashion",
                        help="random: random images, a quick check that it runs")
    args = parser.parse_args()
    import sklearn
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.datasets import load_fashion_mnist

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    torch.set_num_threads(os.cpu_count() or 1)
    if args.data == "random":
        rng = np.random.default_rng(0)
        X, y = rng.random((args.train, 1, 28, 28), dtype=np.float32), np.arange(args.train) % 3
        X_test = rng.random((args.many, 1, 28, 28), dtype=np.float32)
    else:
        X, y = load_fashion_mnist(subset="train", return_X_y=True)
        X_test, _ = load_fashion_mnist(subset="test", return_X_y=True)
    X, y = X[:args.train], y[:args.train]
    one, many = X_test[:1], X_test[:args.many]
    print(f"Measured by `python benchmarks/latency.py --calls {args.calls}` on "
          f"{time.strftime('%Y-%m-%d')}: {cpu_model()} ({os.cpu_count()} CPUs), Python "
          f"{platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"scikit-learn {sklearn.__version__}; median of {args.calls} calls, in ms.\n")
    mlp = MLPClassifier(max_iter=args.epochs, random_state=0).fit(X.reshape(len(X), -1), y)
    rows = {}
    for arch, label in (("lenet", '`arch="lenet"`'), ("auto", "default net")):
        clf = CNNClassifier(arch, max_iter=args.epochs, random_state=0).fit(X, y)
        rows[label] = {name: (median_ms(single, args.calls),
                              median_ms(batch, max(args.calls // 10, 5)))
                       for name, (single, batch) in contenders(clf, one, many).items()}
    flat_one, flat_many = one.reshape(1, -1), many.reshape(len(many), -1)
    mlp_times = (median_ms(lambda: mlp.predict(flat_one), args.calls),
                 median_ms(lambda: mlp.predict(flat_many), max(args.calls // 10, 5)))
    for which, title in ((0, "one 28x28 image"), (1, f"{args.many:,} images")):
        names = list(next(iter(rows.values())))
        print(f"| {title} | " + " | ".join(names) + " | `MLPClassifier.predict` |")
        print("| --- |" + " ---: |" * (len(names) + 1))
        for i, (label, times) in enumerate(rows.items()):
            mlp_cell = f"{mlp_times[which]:.3f}" if i == 0 else ""
            print(f"| {label} | " + " | ".join(f"{times[n][which]:.3f}" for n in names)
                  + f" | {mlp_cell} |")
        print()


if __name__ == "__main__":
    main()
