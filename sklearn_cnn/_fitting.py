"""How the estimator turns its parameters into a network and a training setup:
the architecture's specs, the starting weights (fresh, pretrained, or another
model's), the frozen layers, the per-epoch report."""

from __future__ import annotations

import os

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._weights import init_weights
from .architectures import build_architecture
from .layers import LayerSpec, Linear, Shape
from .pretrained import load_pretrained, torchvision_name

#: estimator parameters passed on to the architecture's builder when set
ARCH_PARAMS = ("filters", "kernel_size", "hidden_units", "activation", "pooling", "dropout",
               "batch_norm", "width")


def is_torch_module(arch) -> bool:
    """Whether ``arch`` is a ``torch.nn.Module`` subclass or instance (torch is not
    imported to find out)."""
    cls = arch if isinstance(arch, type) else type(arch)
    return any(c.__name__ == "Module" and c.__module__.startswith("torch.nn")
               for c in cls.__mro__)


def arch_params(estimator) -> dict:
    """The architecture parameters that were set (None means the architecture's own
    default)."""
    return {name: getattr(estimator, name) for name in ARCH_PARAMS
            if getattr(estimator, name) is not None}


def wants_pretrained(estimator) -> bool:
    return bool(estimator.pretrained) or estimator.weights is not None


def build_specs(estimator, input_shape: Shape, n_outputs: int, outputs: str = "classes"
                ) -> tuple[tuple[LayerSpec, ...], list[str]]:
    """The estimator's architecture for images of ``input_shape`` with ``n_outputs``
    outputs (``outputs`` says what they are, for messages), and its notes;
    torchvision's ImageNet form when pretrained weights are wanted."""
    extra = {}
    if wants_pretrained(estimator):
        torchvision_name(estimator.arch)  # a ValueError naming those that have weights
        extra["imagenet"] = True
    return build_architecture(estimator.arch, input_shape, n_outputs, outputs=outputs,
                              **arch_params(estimator), **extra)


def initial_weights(estimator, specs, input_shape: Shape, seed: int
                    ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Fresh weights (He/Glorot, seeded), overwritten by the pretrained file's and
    then by ``init_from``'s wherever those fit; with notes on what was loaded."""
    weights = init_weights(specs, input_shape, np.random.default_rng(seed))
    notes = []
    if wants_pretrained(estimator):
        loaded, notes = load_pretrained(estimator.arch, specs, input_shape,
                                        estimator.weights, estimator.batch_norm)
        weights.update(loaded)
    if estimator.init_from is not None:
        weights.update(reusable_weights(source_weights(estimator.init_from), weights))
    return weights, notes


def source_weights(init_from) -> dict[str, np.ndarray]:
    """The weights ``init_from`` names: a fitted estimator (or one wrapped in
    ``sklearn.frozen.FrozenEstimator``, which ``clone`` and ``GridSearchCV`` leave
    fitted), or the path of a model file written by ``save``."""
    if isinstance(init_from, (str, os.PathLike)):
        from .persistence import load

        try:
            return load(init_from, backend="numpy").get_weights()
        except (OSError, ValueError) as exc:
            raise ValueError(f"init_from={os.fspath(init_from)!r} is not a model file "
                             f"written by CNNClassifier.save: {exc}") from None
    try:
        check_is_fitted(init_from)
    except NotFittedError:
        raise NotFittedError(
            f"init_from={type(init_from).__name__}(...) is not fitted. clone() and "
            "GridSearchCV hand every fit an unfitted copy of an estimator parameter: pass "
            "sklearn.frozen.FrozenEstimator(model) or the path of model.save(path) "
            "instead") from None
    return init_from.get_weights()


def reusable_weights(source: dict[str, np.ndarray], weights: dict) -> dict:
    """``source``'s arrays for every layer whose arrays all match ``weights`` in key
    and shape: a layer is taken whole or not at all (never a bias without its
    weight); cast to the dtype of ``weights``."""
    layers: dict[str, list[str]] = {}
    for key in weights:
        layers.setdefault(key.rsplit(".", 1)[0], []).append(key)
    return {key: source[key].astype(weights[key].dtype) for keys in layers.values()
            if all(k in source and source[k].shape == weights[k].shape for k in keys)
            for key in keys}


def frozen_layers(freeze, specs: tuple[LayerSpec, ...] | None) -> int:
    """How many leading top-level layers ``freeze`` keeps fixed."""
    if freeze is None:
        return 0
    if specs is None:
        raise ValueError("freeze needs an architecture made of sklearn_cnn.layers specs, "
                         "not a custom torch.nn.Module")
    if freeze == "features":  # everything before the first dense layer
        first = next((i for i, spec in enumerate(specs) if isinstance(spec, Linear)), None)
        if first is None:
            raise ValueError("freeze='features' keeps the layers before the first Linear "
                             "fixed, but arch has no Linear layer; pass the number of "
                             "layers to freeze instead")
        return first
    if freeze >= len(specs):
        raise ValueError(f"freeze={freeze} would freeze all {len(specs)} layers; nothing "
                         "would train")
    return freeze


def print_epoch(epoch: int, record) -> None:
    """verbose >= 1: one table row per epoch (the header before the first)."""
    if epoch == 1:
        print(f"{'epoch':>5}  {'train loss':>10}  {'valid score':>11}  "
              f"{'learning rate':>13}  {'seconds':>7}")
    score = "" if record.validation_score is None else f"{record.validation_score:.4f}"
    print(f"{epoch:>5}  {record.loss:>10.4f}  {score:>11}  {record.learning_rate:>13.3g}  "
          f"{record.seconds:>7.2f}", flush=True)
