"""Backend-neutral layer specifications.

An architecture is *data*: a tuple of the frozen dataclasses below. Each spec knows
how it transforms a shape and which parameters it owns; it holds no weights and runs
nothing. Both backends turn the same tuple into something that runs, so a network is
written once and its weights can move between backends.

Shapes exclude the batch axis: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
Weights use one canonical layout: convolution kernels ``(out, in, kh, kw)`` (OIHW),
dense matrices ``(out, in)``, everything float32.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

Shape = tuple[int, ...]
Padding = int | str | tuple[int, int, int, int]


def conv_output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """Output length of a convolution or pooling along one axis.

    ``floor((n + 2p - f) / s) + 1``, the formula every CNN text starts from.

    Parameters
    ----------
    n : int
        Input size (height or width).
    f : int
        Filter (kernel) size.
    p : int, default=0
        Zero padding added on each side.
    s : int, default=1
        Stride.

    Returns
    -------
    int
        The output size; ``<= 0`` means the filter does not fit.

    Examples
    --------
    >>> conv_output_size(28, 5, p=2, s=1)
    28
    >>> conv_output_size(32, 5)
    28
    """
    return (n + 2 * p - f) // s + 1


def to_python(value):
    """NumPy scalars (``np.int64(3)``, from a grid's ``np.arange``, say) as the Python
    ``int``, ``float`` or ``bool`` they hold; arrays and sequences holding them as
    tuples of those. Anything else is returned as it is."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    if isinstance(value, (list, tuple)) and any(isinstance(v, np.generic) for v in value):
        return tuple(to_python(v) for v in value)
    return value


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    try:
        pair = (value, value) if isinstance(value, int) else tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


class LayerSpec:
    """Base class of all layer specs.

    A spec is a frozen dataclass: it describes a layer (its settings), computes the
    shape it makes of an input and the shapes of the arrays it owns, and holds no
    weights. Subclasses override :meth:`output_shape` when they change the shape and
    :meth:`param_shapes` / :meth:`buffer_shapes` when they own arrays.

    See Also
    --------
    sequence_shapes : The shapes through a tuple of specs.
    sklearn_cnn.summary : A network's layer table, from its specs.

    Examples
    --------
    >>> from sklearn_cnn.layers import Conv2d, LayerSpec
    >>> spec = Conv2d(8, kernel_size=3)
    >>> isinstance(spec, LayerSpec), spec.output_shape((1, 28, 28))
    (True, (8, 26, 26))
    """

    #: names of parameters that the L2 penalty ``alpha`` applies to
    decayed: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        # a frozen dataclass: NumPy scalars become Python values before the checks, so
        # specs compare, hash and save to JSON alike however their numbers were made
        for spec_field in dataclasses.fields(self):
            value = getattr(self, spec_field.name)
            plain = to_python(value)
            if plain is not value:
                object.__setattr__(self, spec_field.name, plain)
        self._check()

    def _check(self) -> None:
        """Refuse field values this layer cannot use (ValueError naming the field)."""

    def output_shape(self, in_shape: Shape) -> Shape:
        """Shape of one sample after this layer, for one of ``in_shape``."""
        return in_shape

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        """Trainable arrays of this layer, by name, in canonical layout."""
        return {}

    def buffer_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        """Non-trainable state saved with the weights (BatchNorm running stats)."""
        return {}


def _require_maps(spec: LayerSpec, in_shape: Shape) -> None:
    if len(in_shape) != 3:
        raise ValueError(
            f"{type(spec).__name__} needs feature maps (C, H, W), got shape {in_shape}"
        )


@dataclass(frozen=True)
class Conv2d(LayerSpec):
    """2-D convolution (cross-correlation, as in every CNN library).

    Parameters
    ----------
    out_channels : int
        Number of filters, so of output feature maps.
    kernel_size : int or tuple of int, default=3
        Filter height and width (one int for a square filter).
    stride : int or tuple of int, default=1
        Step between two positions of the filter.
    padding : int, "valid", "same" or tuple of 4 int, default=0
        An int (zeros on every side), ``"valid"`` (0), ``"same"`` (output size
        ``ceil(n / stride)``, any extra zero on the bottom/right) or an explicit
        ``(top, bottom, left, right)``.
    bias : bool, default=True
        Add a bias per filter (redundant right before a BatchNorm).

    Examples
    --------
    >>> from sklearn_cnn.layers import Conv2d
    >>> Conv2d(6, 5).output_shape((1, 28, 28))            # valid: 28 - 5 + 1
    (6, 24, 24)
    >>> Conv2d(8, 3, padding="same").output_shape((1, 28, 28))
    (8, 28, 28)
    >>> Conv2d(8, 3, stride=2, padding=1).param_shapes((3, 32, 32))
    {'weight': (8, 3, 3, 3), 'bias': (8,)}
    """

    out_channels: int
    kernel_size: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: Padding = 0
    bias: bool = True
    decayed: ClassVar[tuple[str, ...]] = ("weight",)

    def _check(self):
        _pair(self.kernel_size, "kernel_size")
        _pair(self.stride, "stride")
        if not (isinstance(self.out_channels, int) and self.out_channels >= 1):
            raise ValueError(f"out_channels must be a positive int, got {self.out_channels!r}")
        if isinstance(self.padding, str) and self.padding not in ("same", "valid"):
            raise ValueError(f"padding must be an int, 'same' or 'valid', got {self.padding!r}")

    @property
    def kernel(self) -> tuple[int, int]:
        return _pair(self.kernel_size, "kernel_size")

    @property
    def strides(self) -> tuple[int, int]:
        return _pair(self.stride, "stride")

    def resolve_padding(self, in_shape: Shape) -> tuple[int, int, int, int]:
        """Zeros to add as ``(top, bottom, left, right)`` for this input."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if isinstance(self.padding, int):
            return (self.padding,) * 4
        if self.padding != "same":
            return tuple(self.padding)
        pads = []
        for n, f, s in zip(in_shape[1:], self.kernel, self.strides, strict=True):
            total = max((-(-n // s) - 1) * s + f - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)

    def output_shape(self, in_shape: Shape) -> Shape:
        _require_maps(self, in_shape)
        top, bottom, left, right = self.resolve_padding(in_shape)
        (kh, kw), (sh, sw) = self.kernel, self.strides
        h = (in_shape[1] + top + bottom - kh) // sh + 1
        w = (in_shape[2] + left + right - kw) // sw + 1
        if h < 1 or w < 1:
            raise ValueError(f"Conv2d kernel {kh}x{kw} does not fit input {in_shape[1]}x"
                             f"{in_shape[2]} with padding {self.padding!r}")
        return (self.out_channels, h, w)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        shapes = {"weight": (self.out_channels, in_shape[0], *self.kernel)}
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes


@dataclass(frozen=True)
class _Pool2d(LayerSpec):
    kernel_size: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None  # None: same as kernel_size
    padding: int = 0  # on every side; at most half the window, as in PyTorch

    def _check(self):
        _pair(self.kernel_size, "kernel_size")
        if self.stride is not None:
            _pair(self.stride, "stride")
        if not (isinstance(self.padding, int) and 0 <= 2 * self.padding <= min(self.kernel)):
            raise ValueError(f"{type(self).__name__} padding must be an int between 0 and "
                             f"half the window {self.kernel}, got {self.padding!r}")

    @property
    def kernel(self) -> tuple[int, int]:
        return _pair(self.kernel_size, "kernel_size")

    @property
    def strides(self) -> tuple[int, int]:
        return self.kernel if self.stride is None else _pair(self.stride, "stride")

    def fits(self, in_shape: Shape) -> bool:
        """Whether the window fits inside the (padded) feature map."""
        p = 2 * self.padding
        return in_shape[1] + p >= self.kernel[0] and in_shape[2] + p >= self.kernel[1]

    def output_shape(self, in_shape: Shape) -> Shape:
        _require_maps(self, in_shape)
        if not self.fits(in_shape):
            raise ValueError(
                f"{type(self).__name__} window {self.kernel} is larger than the feature "
                f"map {in_shape[1]}x{in_shape[2]}"
            )
        (kh, kw), (sh, sw) = self.kernel, self.strides
        p = self.padding
        return (in_shape[0], conv_output_size(in_shape[1], kh, p, sh),
                conv_output_size(in_shape[2], kw, p, sw))


@dataclass(frozen=True)
class MaxPool2d(_Pool2d):
    """Maximum over each ``kernel_size`` window (floor mode).

    Parameters
    ----------
    kernel_size : int or tuple of int, default=2
        Window height and width.
    stride : int, tuple of int or None, default=None
        Step between two windows; None: the window size (windows that do not
        overlap).
    padding : int, default=0
        ``-inf`` borders on every side, which never win (ResNet's ImageNet stem: 3x3,
        stride 2, pad 1); at most half the window, as in PyTorch.

    Examples
    --------
    >>> from sklearn_cnn.layers import MaxPool2d
    >>> MaxPool2d(2).output_shape((6, 24, 24))
    (6, 12, 12)
    >>> MaxPool2d(3, stride=2, padding=1).output_shape((64, 112, 112))
    (64, 56, 56)
    """


@dataclass(frozen=True)
class AvgPool2d(_Pool2d):
    """Mean over each ``kernel_size`` window (floor mode).

    Parameters
    ----------
    kernel_size : int or tuple of int, default=2
        Window height and width.
    stride : int, tuple of int or None, default=None
        Step between two windows; None: the window size.
    padding : int, default=0
        Zero borders on every side, which count in the mean (PyTorch's
        ``count_include_pad=True``); at most half the window.

    Examples
    --------
    >>> from sklearn_cnn.layers import AvgPool2d
    >>> AvgPool2d(2).output_shape((6, 28, 28))
    (6, 14, 14)
    """


@dataclass(frozen=True)
class AdaptiveAvgPool2d(LayerSpec):
    """Mean over windows chosen so the output is ``output_size`` whatever the input.

    Output row ``i`` of ``H`` input rows averages rows ``floor(i * H / Ho)`` to
    ``ceil((i + 1) * H / Ho) - 1`` (PyTorch's rule), columns likewise; a map smaller
    than ``output_size`` is repeated. VGG and AlexNet end their features with it, so
    their dense layers keep one shape, and their ImageNet weights fit, on any image.

    Parameters
    ----------
    output_size : int or tuple of int, default=1
        Height and width of the output maps.

    Examples
    --------
    >>> from sklearn_cnn.layers import AdaptiveAvgPool2d
    >>> AdaptiveAvgPool2d(7).output_shape((512, 13, 13))
    (512, 7, 7)
    >>> AdaptiveAvgPool2d((2, 3)).output_shape((8, 1, 1))    # a 1x1 map is repeated
    (8, 2, 3)
    """

    output_size: int | tuple[int, int] = 1

    def _check(self):
        _pair(self.output_size, "output_size")

    @property
    def size(self) -> tuple[int, int]:
        return _pair(self.output_size, "output_size")

    def output_shape(self, in_shape: Shape) -> Shape:
        _require_maps(self, in_shape)
        return (in_shape[0], *self.size)


@dataclass(frozen=True)
class GlobalAvgPool2d(LayerSpec):
    """Mean of each channel over all positions: ``(C, H, W) -> (C,)``.

    It takes no parameters; ResNet ends its features with it.

    Examples
    --------
    >>> from sklearn_cnn.layers import GlobalAvgPool2d
    >>> GlobalAvgPool2d().output_shape((512, 4, 4))
    (512,)
    """

    def output_shape(self, in_shape: Shape) -> Shape:
        _require_maps(self, in_shape)
        return (in_shape[0],)


@dataclass(frozen=True)
class Flatten(LayerSpec):
    """``(C, H, W) -> (C*H*W,)`` in C order, so NCHW weights stay portable.

    It takes no parameters.

    Examples
    --------
    >>> from sklearn_cnn.layers import Flatten
    >>> Flatten().output_shape((16, 4, 4))
    (256,)
    """

    def output_shape(self, in_shape: Shape) -> Shape:
        size = 1
        for n in in_shape:
            size *= n
        return (size,)


@dataclass(frozen=True)
class Linear(LayerSpec):
    """Fully connected layer ``y = x W^T + b`` with ``W`` of shape ``(out, in)``.

    Parameters
    ----------
    out_features : int
        Number of outputs (the last layer of a classifier: the number of classes).
    bias : bool, default=True
        Whether the layer adds ``b``.

    Examples
    --------
    >>> from sklearn_cnn.layers import Linear
    >>> Linear(10).output_shape((256,))
    (10,)
    >>> Linear(10).param_shapes((256,))
    {'weight': (10, 256), 'bias': (10,)}
    """

    out_features: int
    bias: bool = True
    decayed: ClassVar[tuple[str, ...]] = ("weight",)

    def _check(self):
        if not (isinstance(self.out_features, int) and self.out_features >= 1):
            raise ValueError(f"out_features must be a positive int, got {self.out_features!r}")

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            raise ValueError(f"Linear needs a vector input (F,), got shape {in_shape}; "
                             "put a Flatten or GlobalAvgPool2d before it")
        return (self.out_features,)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        shapes = {"weight": (self.out_features, in_shape[0])}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes


@dataclass(frozen=True)
class BatchNorm(LayerSpec):
    """Batch normalization per channel (maps) or per feature (vectors).

    Training mode normalizes with the batch statistics and updates the running ones
    as ``running = (1 - momentum) * running + momentum * batch`` (unbiased variance);
    evaluation mode uses the running statistics.

    Parameters
    ----------
    eps : float, default=1e-5
        Added to the variance before its square root.
    momentum : float, default=0.1
        Weight of the batch statistics in the running ones.

    Examples
    --------
    >>> from sklearn_cnn.layers import BatchNorm
    >>> BatchNorm().param_shapes((8, 14, 14))       # a scale and a shift per channel
    {'weight': (8,), 'bias': (8,)}
    >>> BatchNorm().buffer_shapes((8, 14, 14))
    {'running_mean': (8,), 'running_var': (8,)}
    """

    eps: float = 1e-5
    momentum: float = 0.1

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        return {"weight": (in_shape[0],), "bias": (in_shape[0],)}

    def buffer_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        return {"running_mean": (in_shape[0],), "running_var": (in_shape[0],)}


@dataclass(frozen=True)
class Dropout(LayerSpec):
    """Inverted dropout: zero a fraction ``p`` in training, scale the rest by 1/(1-p).

    At prediction time it passes its input through unchanged.

    Parameters
    ----------
    p : float in [0, 1), default=0.5
        Fraction of the values zeroed at each training step.

    Examples
    --------
    >>> from sklearn_cnn.layers import Dropout
    >>> Dropout(0.25)
    Dropout(p=0.25)
    >>> Dropout(0.25).output_shape((128,))
    (128,)
    """

    p: float = 0.5

    def _check(self):
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {self.p!r}")


@dataclass(frozen=True)
class ReLU(LayerSpec):
    """Rectified linear unit, ``max(0, x)``, element by element (no parameters).

    Examples
    --------
    >>> from sklearn_cnn.layers import ReLU
    >>> ReLU().output_shape((6, 24, 24))
    (6, 24, 24)
    """


@dataclass(frozen=True)
class LeakyReLU(LayerSpec):
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    Parameters
    ----------
    negative_slope : float, default=0.01
        Slope for negative inputs.

    Examples
    --------
    >>> from sklearn_cnn.layers import LeakyReLU
    >>> LeakyReLU(0.1)
    LeakyReLU(negative_slope=0.1)
    """

    negative_slope: float = 0.01


@dataclass(frozen=True)
class Tanh(LayerSpec):
    """Hyperbolic tangent, element by element: LeNet-5's original nonlinearity.

    Examples
    --------
    >>> from sklearn_cnn.layers import Tanh
    >>> Tanh().output_shape((120,))
    (120,)
    """


@dataclass(frozen=True)
class Sigmoid(LayerSpec):
    """Logistic function ``1 / (1 + exp(-x))``, element by element (no parameters).

    Examples
    --------
    >>> from sklearn_cnn.layers import Sigmoid
    >>> Sigmoid().output_shape((120,))
    (120,)
    """


@dataclass(frozen=True)
class Residual(LayerSpec):
    """``body(x) + shortcut(x)``; an empty shortcut is the identity.

    The skip connection of ResNet: ``y = F(x) + x``. When the body changes the
    shape, the shortcut must project ``x`` to the same shape (typically a 1x1
    strided Conv2d followed by BatchNorm).

    Parameters
    ----------
    body : tuple of LayerSpec
        The layers of ``F``.
    shortcut : tuple of LayerSpec, default=()
        The layers applied to ``x`` before the sum; empty for the identity.

    Examples
    --------
    >>> from sklearn_cnn.layers import BatchNorm, Conv2d, ReLU, Residual
    >>> block = Residual(
    ...     body=(Conv2d(16, 3, stride=2, padding=1), BatchNorm(), ReLU(),
    ...           Conv2d(16, 3, padding=1), BatchNorm()),
    ...     shortcut=(Conv2d(16, 1, stride=2, bias=False), BatchNorm()))
    >>> block.output_shape((8, 32, 32))
    (16, 16, 16)
    """

    body: tuple[LayerSpec, ...]
    shortcut: tuple[LayerSpec, ...] = field(default=())

    def output_shape(self, in_shape: Shape) -> Shape:
        body_shape = sequence_shapes(self.body, in_shape)[-1]
        short_shape = sequence_shapes(self.shortcut, in_shape)[-1]
        if body_shape != short_shape:
            raise ValueError(
                f"Residual body gives {body_shape} but shortcut gives {short_shape}; "
                "add a projection shortcut (1x1 Conv2d with the body's stride)"
            )
        return body_shape


ACTIVATION_SPECS = (ReLU, LeakyReLU, Tanh, Sigmoid)

#: Every concrete spec type; each backend's builder table must cover exactly these.
SPEC_TYPES = (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d, Flatten,
              Linear, BatchNorm, Dropout, ReLU, LeakyReLU, Tanh, Sigmoid, Residual)


def sequence_shapes(specs: tuple[LayerSpec, ...], in_shape: Shape) -> list[Shape]:
    """Shapes through a sequence of specs: ``[in_shape, after_1, ..., after_n]``.

    Examples
    --------
    >>> from sklearn_cnn.layers import Conv2d, MaxPool2d, ReLU, sequence_shapes
    >>> sequence_shapes((Conv2d(6, 5), ReLU(), MaxPool2d(2)), (1, 28, 28))
    [(1, 28, 28), (6, 24, 24), (6, 24, 24), (6, 12, 12)]
    """
    shapes = [tuple(in_shape)]
    for spec in specs:
        shapes.append(spec.output_shape(shapes[-1]))
    return shapes
