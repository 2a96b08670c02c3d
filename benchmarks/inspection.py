"""Cost of the explanation maps: images/s of saliency, Grad-CAM and occlusion per
backend, against a training pass (forward + backward + update) over the same images.

A fitted ``CNNClassifier(arch)`` of 28x28 images (random weights trained one epoch on
random data: the cost does not depend on what the network learned) explains
``--images`` images; each figure is the median of ``--repeats`` runs.

    .venv/bin/python benchmarks/inspection.py [--archs lenet auto] [--images 512]

Measure alone: two numeric processes on a 2-core machine slow each other 5-30x.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

from sklearn_cnn import CNNClassifier
from sklearn_cnn.inspection import grad_cam, occlusion, saliency

METHODS = {"saliency": saliency, "grad_cam": grad_cam, "occlusion": occlusion}


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["lenet", "auto"])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    backends = ["numpy"] + (["torch"] if importlib.util.find_spec("skorch") else [])
    rng = np.random.default_rng(0)
    X = rng.random((args.images, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.images)
    print("| arch | backend | training pass | saliency | Grad-CAM | occlusion (window 4, "
          "stride 2: 169 patches) |\n| --- | --- | ---: | ---: | ---: | ---: |")
    for arch in args.archs:
        for backend in backends:
            clf = CNNClassifier(arch, backend=backend, max_iter=1, random_state=0).fit(X, y)
            train = median_seconds(lambda clf=clf: clf.partial_fit(X, y), args.repeats)
            cells = [f"{args.images / train:,.0f} img/s"]
            for method in METHODS.values():
                seconds = median_seconds(lambda m=method, c=clf: m(c, X), args.repeats)
                cells.append(f"{args.images / seconds:,.0f} img/s ({seconds / train:.1f}x)")
            print(f"| {arch} | {backend} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
