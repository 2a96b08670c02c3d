"""How the estimator turns its parameters into a network and a training setup:
the architecture's specs, the starting weights (fresh, ImageNet's, or another
model's), the new network, the table of the network before fitting, the frozen
layers, the per-epoch report."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._format import is_model_file, read_weights
from ._input import normalize_input_shape
from ._network import FittedNetwork
from ._training import caller_stacklevel
from ._weights import init_weights
from .architectures import architecture_parameters, build_architecture
from .backends import TrainingConfig, needs_specs
from .distributed import is_main_process
from .layers import LayerSpec, Linear, Shape, to_python
from .pretrained import load_pretrained, torchvision_name
from .summary import Summary, summarize_specs

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


@dataclass(frozen=True)
class StartingWeights:
    """Where a fresh network's weights come from, ``init_from`` resolved: ImageNet's
    (``imagenet``: ``"hub"`` for torchvision's cache, or a ``.pth`` path) and then
    another model's (``model``: a fitted estimator or a model file's path), each
    wherever its layers fit. Both None: fresh weights only."""

    imagenet: str | os.PathLike | None = None
    model: object = None


def starting_weights(estimator) -> StartingWeights:
    """The estimator's ``init_from`` (and the deprecated ``pretrained`` and
    ``weights``, with a FutureWarning saying what to write instead), resolved."""
    init_from, imagenet, model = estimator.init_from, None, None
    if estimator.weights is not None:
        warnings.warn("weights=path is deprecated and will be removed in a future "
                      f"release; write init_from={os.fspath(estimator.weights)!r}",
                      FutureWarning, stacklevel=caller_stacklevel())
        imagenet = estimator.weights
    elif estimator.pretrained:
        warnings.warn("pretrained=True is deprecated and will be removed in a future "
                      "release; write init_from='imagenet'", FutureWarning,
                      stacklevel=caller_stacklevel())
        imagenet = "hub"
    if isinstance(init_from, str) and init_from == "imagenet":
        imagenet = "hub"
    elif isinstance(init_from, (str, os.PathLike)):
        if not os.path.isfile(init_from):
            raise ValueError(f"init_from={str(os.fspath(init_from))!r} names no file; pass "
                             "'imagenet', a file written by save(), a torchvision "
                             ".pth file, or a fitted estimator")
        if is_model_file(init_from):
            model = init_from
        else:  # a torchvision state_dict
            imagenet = init_from
    elif init_from is not None:
        model = init_from
    return StartingWeights(imagenet, model)


def build_specs(estimator, input_shape: Shape, n_outputs: int, start: StartingWeights
                ) -> tuple[tuple[LayerSpec, ...], list[str]]:
    """The estimator's architecture for images of ``input_shape`` with ``n_outputs``
    outputs, and its notes; torchvision's ImageNet form when ImageNet's weights are
    the start."""
    params, extra = arch_params(estimator), {}
    if isinstance(estimator.arch, str):
        _check_arch_params(estimator.arch, params)
    if start.imagenet is not None:
        torchvision_name(estimator.arch)  # a ValueError naming those that have weights
        extra["imagenet"] = True
    return build_architecture(estimator.arch, input_shape, n_outputs,
                              outputs=_what_outputs_are(estimator), **params, **extra)


def _check_arch_params(arch: str, params: dict) -> None:
    """Refuse estimator parameters the named architecture does not take, listing the
    estimator parameters it does take (its builder may take more, ``imagenet`` say,
    which the estimator sets itself)."""
    accepted = [name for name in architecture_parameters(arch) if name in ARCH_PARAMS]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"arch={arch!r} does not take {', '.join(unknown)}; it takes "
                         f"{', '.join(accepted) or 'none of the architecture parameters'}"
                         f" (leave the others at None)")


def _what_outputs_are(estimator) -> str:
    """What the network's outputs are, for messages."""
    return "classes" if is_classifier(estimator) else "outputs"


def new_network(estimator, backend, input_shape: Shape, dtype, n_outputs: int, seed: int,
                config) -> FittedNetwork:
    """A fresh network for images of ``input_shape`` with ``n_outputs`` outputs, from
    the estimator's parameters and starting weights (seeded by ``seed``);
    ``config(specs)`` is the training configuration for the specs (None for a
    custom torch module)."""
    if is_torch_module(estimator.arch):
        if arch_params(estimator):
            raise ValueError(f"architecture parameters {sorted(arch_params(estimator))} "
                             "apply to named architectures, not to a torch.nn.Module")
        return FittedNetwork.from_module(backend, estimator.arch, input_shape, n_outputs,
                                         seed, config=config(None), dtype=dtype,
                                         device=estimator.device)
    start = starting_weights(estimator)
    specs, notes = build_specs(estimator, input_shape, n_outputs, start)
    weights, more_notes = initial_weights(estimator, specs, input_shape, seed, start)
    network = FittedNetwork.build(backend, specs, input_shape, weights, config=config(specs),
                                  dtype=dtype, device=estimator.device,
                                  notes=[*notes, *more_notes])
    if estimator.verbose and is_main_process():
        print(network.summary())
    return network


#: the output width the table of an unfitted estimator shows: fit takes it from y
UNFITTED_OUTPUTS = {"classes": 10, "outputs": 1}


def unfitted_summary(estimator) -> Summary:
    """The layer table of the network ``fit`` would build for images of the
    estimator's ``input_shape``, with :data:`UNFITTED_OUTPUTS` outputs (10 classes,
    or 1 output for a regressor); a NotFittedError without ``input_shape``."""
    name = type(estimator).__name__
    if estimator.input_shape is None:
        raise NotFittedError(f"This {name} is not fitted yet and has no input_shape, so "
                             "its network is unknown: pass input_shape=(C, H, W) to see "
                             "the network before fitting, or fit it first")
    if is_torch_module(estimator.arch):
        raise needs_specs("summary()")
    input_shape = normalize_input_shape(estimator.input_shape)
    outputs = _what_outputs_are(estimator)
    n_outputs = UNFITTED_OUTPUTS[outputs]
    specs, notes = build_specs(estimator, input_shape, n_outputs, starting_weights(estimator))
    unit = outputs if n_outputs > 1 else outputs.removesuffix("s")
    note = (f"not fitted: {n_outputs} {unit} assumed for the output layer; fit sets the "
            "number from y")
    return summarize_specs(specs, input_shape, [*notes, note])


def initial_weights(estimator, specs, input_shape: Shape, seed: int, start: StartingWeights
                    ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Fresh weights (He/Glorot, seeded), overwritten by ImageNet's and then by
    another model's wherever those fit; with notes on what was loaded."""
    weights = init_weights(specs, input_shape, np.random.default_rng(seed))
    notes = []
    if start.imagenet is not None:
        path = None if start.imagenet == "hub" else start.imagenet
        loaded, notes = load_pretrained(estimator.arch, specs, input_shape, path,
                                        estimator.batch_norm)
        weights.update(loaded)
    if start.model is not None:
        weights.update(reusable_weights(source_weights(start.model), weights))
    return weights, notes


def is_fitted_source(init_from) -> bool:
    """Whether ``init_from`` is a fitted estimator (which ``clone`` must share rather
    than copy, or the copy would arrive unfitted)."""
    if init_from is None or isinstance(init_from, (str, os.PathLike)):
        return False
    try:
        check_is_fitted(init_from)
    except (NotFittedError, TypeError):
        return False
    return True


def source_weights(init_from) -> dict[str, np.ndarray]:
    """The weights of a fitted estimator (or one wrapped in
    ``sklearn.frozen.FrozenEstimator``), or of a model file written by ``save``."""
    if isinstance(init_from, (str, os.PathLike)):
        try:
            return read_weights(init_from)
        except (OSError, ValueError) as exc:
            raise ValueError(f"init_from={str(os.fspath(init_from))!r} is not a model file "
                             f"written by CNNClassifier.save: {exc}") from None
    try:
        check_is_fitted(init_from)
    except NotFittedError:
        raise NotFittedError(
            f"init_from={type(init_from).__name__}(...) is not fitted; fit it first, or "
            "pass the path of model.save(path)") from None
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


def training_config(estimator, specs, **loss) -> TrainingConfig:
    """How the optimizer steps, from the estimator's parameters (``specs``: the
    network's, for ``freeze``; ``loss``: the loss and label smoothing)."""
    numbers = {name: float(getattr(estimator, name)) for name in (
        "learning_rate_init", "alpha", "momentum", "beta_1", "beta_2", "epsilon")}
    # Python floats, whatever NumPy type a grid gave
    return TrainingConfig(
        solver=estimator.solver, nesterovs_momentum=bool(estimator.nesterovs_momentum),
        max_grad_norm=None if estimator.max_grad_norm is None
        else float(estimator.max_grad_norm),
        frozen_layers=frozen_layers(to_python(estimator.freeze), specs),
        mixed_precision=estimator.mixed_precision, **loss, **numbers)


def print_epoch(epoch: int, record) -> None:
    """verbose >= 1: one table row per epoch (the header before the first); the
    validation score's column only when there is one (early stopping). In
    data-parallel training only the first process prints."""
    if not is_main_process():
        return
    validated = record.validation_score is not None
    if epoch == 1:
        score = f"  {'valid score':>11}" if validated else ""
        print(f"{'epoch':>5}  {'train loss':>10}{score}  {'learning rate':>13}  "
              f"{'seconds':>7}")
    score = f"  {record.validation_score:>11.4f}" if validated else ""
    print(f"{epoch:>5}  {record.loss:>10.4f}{score}  {record.learning_rate:>13.3g}  "
          f"{record.seconds:>7.2f}", flush=True)
