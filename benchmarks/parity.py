"""How alike the two backends train: the same estimator, seed and data on NumPy and
torch, shuffling and augmentation on, no dropout; the largest weight difference after
3 epochs and the share of held-out predictions that agree, in float32 and float64.

    .venv/bin/python benchmarks/parity.py
"""

import warnings

import numpy as np

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images

CONFIGS = {"simple, augment='standard', batch 64, alpha=0.01":
           dict(arch="simple", augment="standard", batch_size=64, alpha=0.01),
           "the defaults (arch='auto', BatchNorm, one-cycle, sub-pixel shifts)": {}}


def main() -> None:
    X, y = load_digits_images(return_X_y=True)
    print("| network | dtype | max weight difference | held-out predictions agreeing |\n"
          "| --- | --- | ---: | ---: |")
    for label, params in CONFIGS.items():
        for dtype in (np.float32, np.float64):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fits = [CNNClassifier(backend=b, max_iter=3, random_state=0, **params)
                        .fit(X[:500].astype(dtype), y[:500]) for b in ("numpy", "torch")]
            first, second = (f.get_weights() for f in fits)
            diff = max(float(np.abs(first[k] - second[k]).max()) for k in first)
            agree = np.mean(fits[0].predict(X[500:].astype(dtype))
                            == fits[1].predict(X[500:].astype(dtype)))
            print(f"| {label} | {np.dtype(dtype).name} | {diff:.1e} | {agree:.4f} |")


if __name__ == "__main__":
    main()
