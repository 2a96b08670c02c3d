"""The architecture registry and the rule that adapts a network to small images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..layers import AvgPool2d, Conv2d, LayerSpec, MaxPool2d, Residual, Shape


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: a builder of specs and its native input size."""

    name: str
    builder: Callable[..., tuple[LayerSpec, ...]]
    native_size: int


_REGISTRY: dict[str, Architecture] = {}


def register_architecture(name: str, *, native_size: int = 1) -> Callable:
    """Register ``builder(n_classes, **params) -> tuple of specs`` under ``name``.

    ``native_size`` is the smallest image side the architecture was designed for;
    smaller inputs are adapted (see :func:`build_architecture`).

    Examples
    --------
    >>> from sklearn_cnn.layers import Conv2d, Flatten, Linear, ReLU
    >>> @register_architecture("tiny", native_size=3)
    ... def tiny(n_classes, *, filters=4):
    ...     return (Conv2d(filters, 3), ReLU(), Flatten(), Linear(n_classes))
    >>> specs, notes = build_architecture("tiny", (1, 8, 8), n_classes=3)
    >>> specs[0]
    Conv2d(out_channels=4, kernel_size=3, stride=1, padding=0, bias=True)
    >>> _ = unregister_architecture("tiny")
    """
    def decorator(builder):
        _REGISTRY[name] = Architecture(name, builder, native_size)
        return builder
    return decorator


def unregister_architecture(name: str) -> Architecture:
    """Remove ``name`` from the registry and return its entry."""
    get_architecture(name)
    return _REGISTRY.pop(name)


def list_architectures() -> list[str]:
    """Names of the registered architectures, sorted."""
    return sorted(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    """The registered architecture ``name``; ValueError listing the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown arch {name!r}; expected one of {list_architectures()} "
            "or a list of sklearn_cnn.layers specs"
        ) from None


def build_architecture(arch: str | list | tuple, input_shape: Shape, n_classes: int,
                       **params) -> tuple[tuple[LayerSpec, ...], list[str]]:
    """Specs of ``arch`` for images of ``input_shape`` (C, H, W), and adaptation notes.

    The adaptation rule, applied to registered architectures only:

    1. If the image is smaller than the architecture's native size (its shorter
       side), every convolution uses ``"same"`` padding, so convolutions no longer
       shrink the feature maps.
    2. A pooling layer whose window is larger than the feature map reaching it is
       left out.

    Both are deterministic and listed in the returned notes (and by ``summary()``).
    A list of specs is used as given.
    """
    if isinstance(arch, (list, tuple)):
        if not all(isinstance(s, LayerSpec) for s in arch):
            raise ValueError("arch as a sequence must hold sklearn_cnn.layers specs, got "
                             f"{[type(s).__name__ for s in arch]}")
        return tuple(arch), []
    entry = get_architecture(arch)
    specs = tuple(entry.builder(n_classes, **params))
    notes = []
    if min(input_shape[1:]) < entry.native_size:
        specs = _same_padding(specs)
        notes.append(f"input {input_shape[1]}x{input_shape[2]} is smaller than {arch}'s "
                     f"native {entry.native_size}x{entry.native_size}: convolutions use "
                     "'same' padding")
    specs, skipped = _drop_oversized_pools(specs, tuple(input_shape))
    notes += [f"{name} {k[0]}x{k[1]} before layer {i} skipped: feature map {h}x{w} "
              "is smaller than its window" for i, name, k, h, w in skipped]
    return specs, notes


def _same_padding(specs: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
    adapted = []
    for spec in specs:
        if isinstance(spec, Conv2d):
            spec = replace(spec, padding="same")
        elif isinstance(spec, Residual):
            spec = replace(spec, body=_same_padding(spec.body),
                           shortcut=_same_padding(spec.shortcut))
        adapted.append(spec)
    return tuple(adapted)


def _drop_oversized_pools(specs, shape):
    kept, skipped = [], []
    for spec in specs:
        if isinstance(spec, (MaxPool2d, AvgPool2d)) and not spec.fits(shape):
            skipped.append((len(kept), type(spec).__name__, spec.kernel, *shape[1:]))
            continue
        kept.append(spec)
        shape = spec.output_shape(shape)
    return tuple(kept), skipped
