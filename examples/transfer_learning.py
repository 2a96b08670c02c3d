"""Transfer learning: learn digits 5-9 from a few examples with a CNN trained on 0-4
=================================================================================

A network trained on one task has learned strokes and edges that serve a related
one. ``init_from=`` starts a new CNNClassifier from a fitted model's weights: every
layer whose name and shape match is copied, the others start fresh. Giving the dense
layers other widths (``hidden_units``) therefore transfers the convolutions only,
and ``freeze="features"`` keeps them fixed so only the dense head learns. Each way
is compared with training from scratch on the same few labelled images, averaged
over several random draws of them.

(For photographs, ``CNNClassifier(arch="resnet18", init_from="imagenet")`` starts from
torchvision's ImageNet weights instead; they are read from the local torch hub cache
and never downloaded, so this example does not use them.)

Run it with::

    python examples/transfer_learning.py [--epochs 30] [--per-class 2] [--draws 4]

Needs the core install only (numpy, scikit-learn): ``pip install sklearn-cnn``.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.layers import Conv2d

#: dense widths unlike LeNet's (120, 84), so that no dense layer matches the source's
NEW_HEAD = (100, 64)


def few_per_class(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` random samples of every class in ``y``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                           for c in np.unique(y)])


def copied_layers(model: CNNClassifier, source: CNNClassifier) -> list[str]:
    """Layers of ``model`` that ``init_from=source`` filled: arrays are copied where
    key and shape match, so a layer may get its bias but not its weight."""
    theirs, described = source.get_weights(), {}
    for key, value in model.get_weights().items():
        layer, array = key.split(".", 1)
        if key in theirs and theirs[key].shape == value.shape:
            described.setdefault(layer, []).append(array)
    mine = model.get_weights()
    return [layer if len(arrays) == sum(k.startswith(f"{layer}.") for k in mine)
            else f"{layer} ({', '.join(arrays)} only)" for layer, arrays in described.items()]


def main(epochs: int = 30, per_class: int = 2, draws: int = 4) -> dict[str, float]:
    """Train on digits 0-4, then learn 5-9 from ``per_class`` images of each digit.

    Parameters
    ----------
    epochs : int, default=30
        Epochs of the source model and of every model trained on the few images.
    per_class : int, default=2
        Labelled images of each new digit.
    draws : int, default=4
        Random draws of the few images; accuracies are averaged over them.

    Returns
    -------
    dict of str to float
        Mean test accuracy on digits 5-9 of each way of training.
    """
    X, y = load_digits_images(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0)
    old, new = y_train < 5, y_train >= 5

    base = CNNClassifier("lenet", max_iter=epochs, random_state=0)
    source = clone(base).fit(X_train[old], y_train[old])
    print(f"source model: LeNet on digits 0-4 ({old.sum()} images), test accuracy on "
          f"0-4: {source.score(X_test[y_test < 5], y_test[y_test < 5]):.3f}")

    ways = {
        "from scratch": {},
        "init_from, every layer": {"init_from": source},
        "init_from, convolutions only": {"init_from": source, "hidden_units": NEW_HEAD},
        "  ... and freeze='features'": {"init_from": source, "hidden_units": NEW_HEAD,
                                        "freeze": "features"},
    }
    X_new, y_new = X_test[y_test >= 5], y_test[y_test >= 5]
    scores: dict[str, list[float]] = {name: [] for name in ways}
    copied = {}
    for draw in range(draws):
        few = few_per_class(y_train[new], per_class, seed=draw)
        X_few, y_few = X_train[new][few], y_train[new][few]
        for name, params in ways.items():
            clf = clone(base).set_params(random_state=draw, **params).fit(X_few, y_few)
            scores[name].append(clf.score(X_new, y_new))
            copied[name] = copied_layers(clf, source) if "init_from" in params else []

    print(f"\ndigits 5-9 from {per_class} images per digit ({5 * per_class} in all), "
          f"{epochs} epochs, mean of {draws} draw(s); test accuracy on {len(y_new)} "
          "images of 5-9:")
    means = {name: float(np.mean(s)) for name, s in scores.items()}
    for name, mean in means.items():
        layers = ", ".join(copied[name]) or "none"
        print(f"  {name:<30} accuracy {mean:.3f}   layers from the source: {layers}")
    convolutions = [str(i) for i, spec in enumerate(source.specs_) if isinstance(spec, Conv2d)]
    print(f"\n(layers {' and '.join(convolutions)} are the convolutions of LeNet as "
          "adapted to 8x8 images: see source.summary())")
    scratch, every, convs = (means[name] for name in list(ways)[:3])
    if convs > max(scratch, every):
        print("Here the transferred convolutions beat training from scratch, while "
              "copying the dense layers too carried over a head tuned to digits 0-4.")
    else:
        print("With these settings transfer did not beat training from scratch "
              "(short runs are noisy: try the default --epochs 30 and --draws 4).")
    return means


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--draws", type=int, default=None,
                        help="random draws of the few images (default 4; 1 when --epochs < 5)")
    args = parser.parse_args()
    if args.draws is None:
        args.draws = 1 if args.epochs < 5 else 4
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    main(args.epochs, args.per_class, args.draws)
