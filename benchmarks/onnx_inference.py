"""ONNX export: inference speed through onnxruntime against the NumPy and torch
backends, and the largest probability difference over the architecture zoo.

    .venv/bin/python benchmarks/onnx_inference.py [--images 2048] [--repeats 5]

Speed: ``predict_proba`` of ``--images`` 28x28 images (LeNet) or 3x32x32 images
(resnet20) on each backend, and the exported graph in onnxruntime with 2 intra-op
threads; images/s, medians of ``--repeats`` runs. Agreement: every registered
architecture (3x16x16 images, narrow where it takes ``width``) on both backends, the
largest absolute difference of the probabilities. Measure alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx

import sklearn_cnn.onnx  # noqa: F401  (registers the converters)
from sklearn_cnn import CNNClassifier, list_architectures
from sklearn_cnn.architectures import architecture_parameters
from sklearn_cnn.onnx import OPSET


def onnx_session(model, sample):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    graph = to_onnx(model, sample[:1], target_opset=OPSET, options={"zipmap": False})
    return ort.InferenceSession(graph.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def median_rate(run, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return n / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    backends = ["numpy"] + (["torch"] if importlib.util.find_spec("skorch") else [])
    rng = np.random.default_rng(0)
    print("| arch | NumPy backend | torch backend | onnxruntime |\n| --- | ---: | ---: | ---: |")
    for arch, shape in (("lenet", (1, 28, 28)), ("resnet20", (3, 32, 32))):
        X = rng.random((args.images, *shape), dtype=np.float32)
        y = rng.integers(0, 10, args.images)
        clf = CNNClassifier(arch, max_iter=1, random_state=0).fit(X[:256], y[:256])
        rates = {}
        for backend in backends:
            model = clf.to_backend(backend)
            rates[backend] = median_rate(lambda m=model, X=X: m.predict_proba(X),
                                         args.images, args.repeats)
        sess = onnx_session(clf, X)
        feed = {sess.get_inputs()[0].name: X}
        rates["onnx"] = median_rate(lambda s=sess, f=feed: s.run(None, f), args.images,
                                    args.repeats)
        cells = [f"{rates[k]:,.0f} img/s" if k in rates else "-"
                 for k in ("numpy", "torch", "onnx")]
        print(f"| {arch} | " + " | ".join(cells) + " |", flush=True)
    X = rng.random((64, 3, 16, 16), dtype=np.float32)
    y = np.arange(64) % 3
    worst = 0.0
    for arch in list_architectures():
        narrow = {"width": 0.25} if "width" in architecture_parameters(arch) else {}
        for backend in backends:
            clf = CNNClassifier(arch, backend=backend, max_iter=1, random_state=0,
                                **narrow).fit(X, y)
            sess = onnx_session(clf, X)
            _, proba = sess.run(None, {sess.get_inputs()[0].name: X})
            worst = max(worst, float(np.abs(proba - clf.predict_proba(X)).max()))
    print(f"\nlargest probability difference over {len(list_architectures())} architectures "
          f"x {len(backends)} backends, 64 images each: {worst:.2e}")


if __name__ == "__main__":
    main()
