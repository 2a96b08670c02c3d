"""Pieces the architecture files share: option tables, validated widths, small blocks."""

from __future__ import annotations

from collections.abc import Sequence

from ..layers import (
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dropout,
    LayerSpec,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
POOLS = {"max": MaxPool2d, "avg": AvgPool2d}


def choice(name: str, value: str, table: dict) -> type:
    if value not in table:
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    return table[value]


def widths(name: str, values: Sequence[int] | int, count: int | None, width: float
           ) -> tuple[int, ...]:
    """Validate a tuple of layer widths (one per stage when ``count`` is given) and
    scale it by the ``width`` multiplier (never below 1)."""
    values = (values,) if isinstance(values, int) else tuple(values)
    if count is not None and len(values) != count:
        raise ValueError(f"{name} needs {count} values (one per stage), got {values!r}")
    if not values and count is None:
        return ()
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name} must hold positive ints, got {values!r}")
    if not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"width must be a positive number, got {width!r}")
    return tuple(max(1, round(v * width)) for v in values)


def check_dropout(p: float) -> float:
    if not (isinstance(p, (int, float)) and 0 <= p < 1):
        raise ValueError(f"dropout must be in [0, 1), got {p!r}")
    return float(p)


def conv_block(out_channels: int, kernel_size: int, activation: type, batch_norm: bool,
               stride: int = 1, padding: int | str = 0, bias: bool | None = None
               ) -> list[LayerSpec]:
    """Conv2d -> [BatchNorm] -> activation. By default the convolution has no bias
    when BatchNorm follows (BatchNorm's shift replaces it)."""
    conv = Conv2d(out_channels, kernel_size, stride=stride, padding=padding,
                  bias=not batch_norm if bias is None else bias)
    return [conv, *([BatchNorm()] if batch_norm else []), activation()]


def dense_head(hidden: tuple[int, ...], n_classes: int, activation: type,
               dropout: float, batch_norm: bool = False) -> list[LayerSpec]:
    """[Linear -> [BatchNorm] -> activation -> [Dropout]] per hidden width, then the
    output Linear(n_classes)."""
    layers: list[LayerSpec] = []
    for units in hidden:
        layers += [Linear(units), *([BatchNorm()] if batch_norm else []), activation()]
        if dropout:
            layers.append(Dropout(dropout))
    return [*layers, Linear(n_classes)]
