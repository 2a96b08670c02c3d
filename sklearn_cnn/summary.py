"""Output shapes and parameter counts of a network, from its specs alone."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._weights import walk
from .architectures import build_architecture
from .layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv2d,
    LayerSpec,
    Linear,
    MaxPool2d,
    Residual,
    Shape,
)


@dataclass(frozen=True)
class SummaryRow:
    """One layer: its name, the output shape (without the batch axis), its parameters.

    Attributes
    ----------
    layer : str
        The layer, described (``"Conv2d 6@5x5"``); indented inside a residual block.
    output_shape : tuple of int
        Shape of one sample after the layer.
    params : int
        Trainable parameters of the layer.

    Examples
    --------
    >>> from sklearn_cnn.summary import summary
    >>> summary("lenet", (1, 28, 28)).rows[0]
    SummaryRow(layer='Conv2d 6@5x5', output_shape=(6, 24, 24), params=156)
    """

    layer: str
    output_shape: Shape
    params: int


@dataclass(frozen=True)
class Summary:
    """A network's layers as a table.

    Attributes
    ----------
    rows : list of SummaryRow
        One row a layer; layers inside a residual block are indented.
    total_params : int
        Trainable parameters (BatchNorm running statistics are not counted).
    input_shape : tuple (C, H, W)
    notes : list of str
        How the architecture was adapted to the input, if it was.

    See Also
    --------
    sklearn_cnn.summary : The table of a named architecture or a list of specs.
    sklearn_cnn.CNNClassifier.summary : The table of a fitted estimator's network.

    Examples
    --------
    >>> from sklearn_cnn.summary import summary
    >>> table = summary("lenet", (1, 28, 28), n_classes=10)
    >>> table.total_params
    44426
    >>> table.rows[-1]
    SummaryRow(layer='Linear 10', output_shape=(10,), params=850)
    >>> print(str(table).splitlines()[-1])
    Total params: 44,426
    """

    rows: list[SummaryRow]
    total_params: int
    input_shape: Shape
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [(r.layer, "x".join(map(str, r.output_shape)), f"{r.params:,}")
                 for r in self.rows]
        header = ("Layer", "Output shape", "Param #")
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(3)]

        def fmt(row):
            return f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}"

        rule = "-" * len(fmt(header))
        shape = "x".join(map(str, self.input_shape))
        out = [f"Input: {shape}", rule, fmt(header), rule, *map(fmt, lines), rule,
               f"Total params: {self.total_params:,}"]
        return "\n".join(out + [f"Note: {note}" for note in self.notes])

    def __repr__(self) -> str:
        return str(self)


def describe(spec: LayerSpec) -> str:
    """A short name: ``Conv2d 6@5x5 pad=same``, ``MaxPool2d 2x2``, ``Linear 120``."""
    name = type(spec).__name__
    if isinstance(spec, Residual):
        return f"{name} ({'projection' if spec.shortcut else 'identity'} shortcut)"
    if isinstance(spec, Conv2d):
        name += f" {spec.out_channels}@{spec.kernel[0]}x{spec.kernel[1]}"
    elif isinstance(spec, (MaxPool2d, AvgPool2d)):
        name += f" {spec.kernel[0]}x{spec.kernel[1]}"
    elif isinstance(spec, AdaptiveAvgPool2d):
        name += f" to {spec.size[0]}x{spec.size[1]}"
    elif isinstance(spec, Linear):
        name += f" {spec.out_features}"
    defaults = {"stride": (1, None), "padding": (0,), "bias": (True,)}
    extras = [f"{k}={v}" for k, v in vars(spec).items()
              if k in defaults and v not in defaults[k]]
    extras += [f"{k}={v}" for k, v in vars(spec).items()
               if k in ("p", "negative_slope")]
    return " ".join([name, *extras])


def summarize_specs(specs: tuple[LayerSpec, ...], input_shape: Shape,
                    notes: list[str] | None = None) -> Summary:
    """Summary of an explicit tuple of specs on inputs of ``input_shape`` (C, H, W)."""
    rows = []
    for key, spec, in_shape, _ in walk(tuple(specs), tuple(input_shape)):
        depth = key.count(".body.") + key.count(".shortcut.")
        own = sum(int(np.prod(s)) for s in spec.param_shapes(in_shape).values())
        rows.append(SummaryRow("  " * depth + describe(spec), spec.output_shape(in_shape),
                               own))
    return Summary(rows, sum(r.params for r in rows), tuple(input_shape), list(notes or []))


def summary(arch: str | list | tuple, input_shape: Shape, n_classes: int = 10,
            **arch_params) -> Summary:
    """Layer-by-layer output shapes and parameter counts of an architecture.

    Parameters
    ----------
    arch : str or list of LayerSpec
        A registered architecture name (see ``list_architectures()``) or specs.
    input_shape : tuple of int
        ``(C, H, W)``, or ``(H, W)`` for one channel.
    n_classes : int, default=10
    **arch_params
        Passed to the architecture's builder (for example ``filters=(6, 16)``).

    Returns
    -------
    Summary
        ``str()`` is a table; ``.rows`` and ``.total_params`` hold the numbers.

    Examples
    --------
    >>> summary("lenet", (1, 28, 28), n_classes=10).total_params
    44426
    >>> summary("lenet", (1, 32, 32)).total_params
    61706
    """
    input_shape = tuple(input_shape)
    if len(input_shape) == 2:
        input_shape = (1, *input_shape)
    specs, notes = build_architecture(arch, input_shape, n_classes, **arch_params)
    return summarize_specs(specs, input_shape, notes)
