"""The architecture registry and the rule that adapts a network to small images."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..layers import AvgPool2d, Conv2d, LayerSpec, MaxPool2d, Residual, Shape, to_python


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: a builder of specs and its native input size.

    Parameters
    ----------
    name : str
        The name ``arch=`` takes.
    builder : callable
        ``builder(n_classes, **params)`` returns the tuple of layer specs.
    native_size : int
        The smallest image side the architecture was designed for; smaller images
        are adapted (see :func:`build_architecture`).

    See Also
    --------
    get_architecture : The registered entry of a name.
    sklearn_cnn.register_architecture : Add one.

    Examples
    --------
    >>> from sklearn_cnn.architectures import get_architecture
    >>> lenet = get_architecture("lenet")
    >>> lenet.name, lenet.native_size
    ('lenet', 28)
    >>> len(lenet.builder(10))               # conv, relu, pool twice; flatten; 3 dense
    12
    """

    name: str
    builder: Callable[..., tuple[LayerSpec, ...]]
    native_size: int


_REGISTRY: dict[str, Architecture] = {}


def register_architecture(name: str, *, native_size: int = 1) -> Callable:
    """Register ``builder(n_classes, **params) -> tuple of specs`` under ``name``.

    ``native_size`` is the smallest image side the architecture was designed for;
    smaller inputs are adapted (see :func:`~sklearn_cnn.architectures.build_architecture`).

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


def architecture_parameters(name: str) -> list[str]:
    """The keyword parameters (``filters``, ``width``...) architecture ``name`` takes."""
    signature = inspect.signature(get_architecture(name).builder)
    return [p.name for p in signature.parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name != "input_shape"]


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


def build_architecture(arch: str | list | tuple, input_shape: Shape, n_classes: int, *,
                       outputs: str = "classes", **params
                       ) -> tuple[tuple[LayerSpec, ...], list[str]]:
    """Specs of ``arch`` for images of ``input_shape`` (C, H, W) with ``n_classes``
    outputs (``outputs``: what they are, for messages: "classes", or a regressor's
    "outputs"), and adaptation notes.

    The adaptation rule, applied to registered architectures only. If the image's
    shorter side is below the architecture's native size:

    1. every convolution uses ``"same"`` padding, so convolutions no longer shrink
       the feature maps;
    2. leading pooling layers are left out, one at a time, while the last feature
       map would be smaller than on a native-size image (or than the image itself,
       if that is smaller still). Early layers thus keep the resolution that the
       small image cannot spare, and the classifier head sees a map as large as
       the architecture was designed for.

    On any image, a pooling layer whose window is larger than the feature map
    reaching it is left out. Every step is deterministic and listed in the returned
    notes (and by ``summary()``). A list of specs is used as given, and
    ``imagenet=True`` (torchvision's ImageNet form, whose pretrained weights expect
    its exact geometry) skips steps 1 and 2.
    """
    if isinstance(arch, (list, tuple)):
        if not all(isinstance(s, LayerSpec) for s in arch):
            raise ValueError("arch as a sequence must hold sklearn_cnn.layers specs, got "
                             f"{[type(s).__name__ for s in arch]}")
        if params:
            raise ValueError(f"architecture parameters {sorted(params)} apply to named "
                             "architectures only, not to a list of layer specs")
        check_spec_list(tuple(arch), tuple(input_shape), n_classes, outputs)
        return tuple(arch), []
    entry = get_architecture(arch)
    params = {name: to_python(value) for name, value in params.items()}  # grid values
    accepted = architecture_parameters(arch)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"arch={arch!r} does not take {', '.join(unknown)}; it takes "
                         f"{', '.join(accepted)}")
    if "input_shape" in inspect.signature(entry.builder).parameters:
        params["input_shape"] = tuple(input_shape)  # a builder that sizes itself
    specs = tuple(entry.builder(n_classes, **params))
    shape, notes = tuple(input_shape), []
    if min(shape[1:]) < entry.native_size and not params.get("imagenet"):
        native = (shape[0], entry.native_size, entry.native_size)
        try:
            target = min(_last_map_side(specs, native), *shape[1:])
        except ValueError as exc:  # the parameters do not fit even the native size
            raise _too_small(arch, params, shape, n_classes, exc, entry.native_size) from None
        specs = _same_padding(specs)
        notes.append(f"input {shape[1]}x{shape[2]} is smaller than {arch}'s native "
                     f"{entry.native_size}x{entry.native_size}: convolutions use 'same' "
                     "padding")
        while _last_map_side(specs, shape) < target:
            first = next((i for i, s in enumerate(specs) if isinstance(s, _POOLS)), None)
            if first is None:  # strided convolutions alone; nothing to leave out
                break
            notes.append(f"{_describe_pool(specs[first])} at layer {first} left out: the "
                         f"last feature map would be smaller than {target}x{target}")
            specs = specs[:first] + specs[first + 1:]
    try:
        specs, skipped = _drop_oversized_pools(specs, shape)
    except ValueError as exc:  # more stages than the image has room for
        raise _too_small(arch, params, shape, n_classes, exc) from None
    notes += [f"{_describe_pool(spec)} at layer {i} left out: feature map {h}x{w} is "
              "smaller than its window" for i, spec, h, w in skipped]
    return specs, notes


_POOLS = (MaxPool2d, AvgPool2d)


def _too_small(arch: str, params: dict, shape: Shape, n_classes: int, exc: ValueError,
               native_size: int | None = None) -> ValueError:
    """The error for a named architecture whose layers shrink the feature map to
    nothing before its last convolution: it names the parameters given (``filters``
    that ask for more convolution stages than the image has room for, a large
    ``kernel_size``) and what to change."""
    given = {k: v for k, v in params.items() if k != "input_shape"}
    said = ", ".join(f"{k}={v!r}" for k, v in given.items())
    images = f"{shape[1]}x{shape[2]} images"
    where = images if native_size is None else (
        f"its native {native_size}x{native_size} layout, which it then adapts to these "
        f"{images}")
    remedies = []
    filters = given.get("filters")
    if isinstance(filters, tuple) and len(filters) > 1:
        fitting = _most_stages(arch, shape, n_classes, given)
        most = f"; at most {fitting} fit{'s' if fitting == 1 else ''}" if fitting else ""
        remedies.append(f"fewer values in filters (each one adds a convolution stage that "
                        f"shrinks the map{most})")
    if "kernel_size" in given:
        remedies.append("a smaller kernel_size")
    if native_size is None:  # smaller images are laid out as native ones: size is no cure
        remedies.append("larger images")
    if not remedies:
        remedies.append("other architecture parameters")
    advice = (", ".join(remedies[:-1]) + " or " if len(remedies) > 1 else "") + remedies[-1]
    return ValueError(f"arch={arch!r}{' with ' + said if said else ''} does not fit "
                      f"{where}: {exc}. Use {advice}")


def _most_stages(arch: str, shape: Shape, n_classes: int, params: dict) -> int | None:
    """The most leading values of ``params["filters"]`` with which ``arch`` fits
    images of ``shape``, or None when no shorter tuple fits (or the architecture
    takes a fixed number)."""
    filters = params["filters"]
    for count in range(len(filters) - 1, 0, -1):
        try:
            build_architecture(arch, shape, n_classes, **{**params, "filters": filters[:count]})
        except ValueError:
            continue
        return count
    return None


def check_spec_list(specs: tuple[LayerSpec, ...], input_shape: Shape, n_classes: int,
                    outputs: str = "classes") -> None:
    """Refuse, before any work, a list of specs that cannot map images of
    ``input_shape`` to ``n_classes`` outputs (``outputs``: what they are, "classes"
    or a regressor's "outputs"): an empty list, a layer that does not fit the shape
    reaching it, or a network whose output is not ``(n_classes,)``. The message
    names the layer."""
    if not specs:
        raise ValueError(f"arch is an empty list of layers; it must end in a "
                         f"Linear({n_classes}) for the {n_classes} {outputs}")
    shape = input_shape
    for position, spec in enumerate(specs):
        try:
            shape = spec.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"arch layer {position}, {spec!r}, does not fit its input of "
                             f"shape {shape}: {exc}") from None
    if shape != (n_classes,):
        raise ValueError(f"arch's last layer, {specs[-1]!r} (layer {len(specs) - 1}), "
                         f"outputs shape {shape}, but y has {n_classes} {outputs}: end the "
                         f"list with Linear({n_classes})")


def _describe_pool(spec) -> str:
    return f"{type(spec).__name__} {spec.kernel[0]}x{spec.kernel[1]}"


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
    """Leave out pools whose window exceeds the map; return (kept, [(i, spec, h, w)])."""
    kept, skipped = [], []
    for spec in specs:
        if isinstance(spec, _POOLS) and not spec.fits(shape):
            skipped.append((len(kept), spec, *shape[1:]))
            continue
        kept.append(spec)
        shape = spec.output_shape(shape)
    return tuple(kept), skipped


def _last_map_side(specs, shape) -> int:
    """Shorter side of the last (C, H, W) feature map, oversized pools left out."""
    side = min(shape[1:])
    for spec in _drop_oversized_pools(specs, shape)[0]:
        shape = spec.output_shape(shape)
        if len(shape) == 3:
            side = min(shape[1:])
    return side
