"""Pictures of a CNN: a convolution, filters, feature maps, training, mistakes
===========================================================================

What a convolution does to an image, then LeNet trained on scikit-learn's 8x8
digits: its first-layer filters, the feature maps of one test image, its loss curve,
the test images it gets wrong and its confusion matrix. Each picture is a Display of
:mod:`sklearn_cnn.plotting` (the confusion matrix is scikit-learn's own). Run it
with::

    python examples/visualize_cnn.py [--epochs 30] [--out docs] [--show]

Without ``--out`` the figures are drawn but not written anywhere; ``--show`` leaves
them open and shows them (``plt.show()``) instead of closing them.

Needs matplotlib: ``pip install 'sklearn-cnn[plot]'``.
"""

import argparse
from pathlib import Path

try:
    import matplotlib.pyplot as plt
except ImportError:
    raise SystemExit("this example draws with matplotlib: pip install 'sklearn-cnn[plot]'"
                     ) from None
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.plotting import (
    ConvolutionDisplay,
    FeatureMapsDisplay,
    FiltersDisplay,
    LossCurveDisplay,
    MisclassifiedDisplay,
)

DPI = 80  # small files for the docs


def edge_image(size: int = 12) -> np.ndarray:
    """A bright square on a dark background: two vertical edges, two horizontal."""
    image = np.zeros((size, size))
    image[size // 4:3 * size // 4, size // 4:3 * size // 4] = 1.0
    return image


def main(epochs: int = 30, out: str | None = None, show: bool = False) -> float:
    X, y = load_digits_images(return_X_y=True)            # (1797, 1, 8, 8) in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    clf = CNNClassifier("lenet", max_iter=epochs, early_stopping=True, n_iter_no_change=50,
                        random_state=0).fit(X_train, y_train)
    accuracy = clf.score(X_test, y_test)
    print(f"LeNet test accuracy: {accuracy:.3f} after {clf.n_iter_} epochs")

    # a vertical-edge kernel: +1 left, -1 right; it answers the square's left and
    # right sides with opposite signs and ignores its top and bottom
    vertical_edges = np.array([[1.0, 0.0, -1.0]] * 3)
    displays = {
        "convolution": ConvolutionDisplay.from_arrays(edge_image(), vertical_edges),
        "filters": FiltersDisplay.from_estimator(clf, layer=0),
        "feature_maps": FeatureMapsDisplay.from_estimator(clf, X_test[0], layer="1"),  # after ReLU
        "loss_curve": LossCurveDisplay.from_estimator(clf),
        "misclassified": MisclassifiedDisplay.from_estimator(clf, X_test, y_test,
                                                             max_images=16),
    }
    figures = {name: display.figure_ for name, display in displays.items()}
    fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    ConfusionMatrixDisplay.from_estimator(clf, X_test, y_test, ax=ax, colorbar=False)
    ax.set_title(f"LeNet on digits: test accuracy {accuracy:.3f}")
    figures["confusion_matrix"] = fig

    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, figure in figures.items():
            figure.savefig(folder / f"{name}.png", dpi=DPI)
        print(f"wrote {len(figures)} pictures to {folder}/: {', '.join(figures)}")
    else:
        print("pass --out DIR to write the pictures as PNG files")
    if show:  # leave them open (the documentation's gallery collects open figures)
        plt.show()
    else:
        for figure in figures.values():
            plt.close(figure)
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=None, help="folder for the PNG files (e.g. docs)")
    parser.add_argument("--show", action="store_true",
                        help="show the figures (plt.show()) instead of closing them")
    arguments = parser.parse_args()
    main(arguments.epochs, arguments.out, arguments.show)
