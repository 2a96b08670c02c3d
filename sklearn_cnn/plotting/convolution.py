"""The teaching picture: an image, a kernel and their convolution side by side."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from .._network import FittedNetwork
from ..layers import Conv2d, conv_output_size
from ._common import _deprecated, _diverging, _pyplot, _write_values

__all__ = ["ConvolutionDisplay", "plot_convolution"]


class ConvolutionDisplay:
    """An image, a kernel and their convolution side by side, as a scikit-learn
    Display.

    The output is computed as a network of the package computes it: by a one-layer
    network (a :class:`~sklearn_cnn.layers.Conv2d`) built with
    :meth:`FittedNetwork.build <sklearn_cnn._network.FittedNetwork.build>` on the
    NumPy backend, in float64. A convolution layer computes a cross-correlation,
    ``Y[i, j] = sum_mn X[i*s + m, j*s + n] * K[m, n]`` over the zero-padded image.
    The titles give the shapes and the output-size formula
    ``(n + 2p - f) // s + 1`` (:func:`sklearn_cnn.conv_output_size`).

    Parameters
    ----------
    image, kernel, output : ndarray of shape (H, W), (kh, kw), (Ho, Wo)
    stride, padding : int, default=1, 0

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : ndarray of 3 matplotlib Axes
        Input, kernel and output; ``ax_[2].images[0].get_array()`` is the output.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_cnn.plotting import ConvolutionDisplay
    >>> image = np.zeros((8, 8))
    >>> image[:, :4] = 1.0                        # bright left half: a vertical edge
    >>> kernel = np.array([[1.0, 0.0, -1.0]] * 3)   # responds to vertical edges
    >>> display = ConvolutionDisplay.from_arrays(image, kernel)
    >>> display.output[0]                         # strong only where the edge is
    array([0., 0., 3., 3., 0., 0.])
    >>> display.ax_[2].get_title()
    'Output 6x6'

    Drawn on axes of your own figure:

    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plt.subplots(1, 3)
    >>> ConvolutionDisplay.from_arrays(image, kernel, stride=2, ax=axes).figure_ is fig
    True
    >>> axes[2].get_title()
    'Output 3x3'
    """

    def __init__(self, image, kernel, output, *, stride: int = 1, padding: int = 0):
        self.image, self.kernel, self.output = image, kernel, output
        self.stride, self.padding = stride, padding

    @classmethod
    def from_arrays(cls, image, kernel, *, stride: int = 1, padding: int = 0,
                    ax=None) -> ConvolutionDisplay:
        """Convolve ``image`` (H, W) with ``kernel`` (kh, kw) and draw them on ``ax`` (3
        Axes: input, kernel, output) or on a new figure; values are written in the
        kernel's cells when it has at most 7x7 of them."""
        image = check_array(image, dtype=np.float64, input_name="image")
        kernel = check_array(kernel, dtype=np.float64, ensure_min_samples=1,
                             ensure_min_features=1, input_name="kernel")
        for name, value, low in (("stride", stride, 1), ("padding", padding, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        sizes = [conv_output_size(n, f, padding, stride)
                 for n, f in zip(image.shape, kernel.shape, strict=True)]
        if min(sizes) < 1:
            raise ValueError(f"kernel {kernel.shape} does not fit image {image.shape} with "
                             f"padding {padding}")
        output = _convolve(image, kernel, int(stride), int(padding))
        return cls(image, kernel, output, stride=stride, padding=padding).plot(ax=ax)

    def plot(self, ax=None) -> ConvolutionDisplay:
        """Draw on ``ax`` (3 Axes) or on a new figure; returns ``self``."""
        plt = _pyplot()
        if ax is None:
            fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
        else:
            axes = np.asarray(ax, dtype=object).ravel()
            if len(axes) != 3:
                raise ValueError(f"ax must hold 3 Axes (input, kernel, output), got "
                                 f"{len(axes)}")
            fig = axes[0].figure
        image, kernel, output = self.image, self.kernel, self.output
        padding, stride = self.padding, self.stride
        (h, w), (kh, kw) = image.shape, kernel.shape
        axes[0].imshow(image, cmap="gray")
        axes[0].set_title(f"Input {h}x{w}" + (f", padding {padding}" if padding else ""))
        _diverging(axes[1], kernel)
        axes[1].set_title(f"Kernel {kh}x{kw}" + (f", stride {stride}" if stride > 1 else ""))
        if kh * kw <= 49:
            _write_values(axes[1], kernel)
        image_out = _diverging(axes[2], output)
        axes[2].set_title(f"Output {output.shape[0]}x{output.shape[1]}")
        formulas = {f"({n} + 2*{padding} - {f}) // {stride} + 1 = {size}"
                    for n, f, size in zip(image.shape, kernel.shape, output.shape,
                                          strict=True)}
        axes[2].set_xlabel("\n".join(sorted(formulas)), fontsize=9)
        fig.colorbar(image_out, ax=axes[2], shrink=0.8)
        for axis in axes:
            axis.set_xticks([])
            axis.set_yticks([])
        self.figure_, self.ax_ = fig, axes
        return self


def plot_convolution(image, kernel, *, stride: int = 1, padding: int = 0, ax=None):
    """Draw an image, a kernel and their convolution side by side.

    Deprecated: use ``ConvolutionDisplay.from_arrays(image, kernel, ...).figure_``; this
    shortcut warns a FutureWarning and will be removed in a future release.

    Parameters
    ----------
    image : array-like of shape (H, W)
        A grayscale image.
    kernel : array-like of shape (kh, kw)
        The filter.
    stride : int, default=1
    padding : int, default=0
        Zeros added on every side of the image.
    ax : sequence of 3 matplotlib Axes, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
        Its first three axes are input, kernel and output.
    """
    _deprecated("plot_convolution", "ConvolutionDisplay.from_arrays(image, kernel, ...)"
                ".figure_")
    return ConvolutionDisplay.from_arrays(image, kernel, stride=stride, padding=padding,
                                          ax=ax).figure_


def _convolve(image: np.ndarray, kernel: np.ndarray, stride: int, padding: int
              ) -> np.ndarray:
    """One-channel convolution by a one-layer network of the package (NumPy backend,
    float64, a zero bias)."""
    spec = Conv2d(1, kernel_size=kernel.shape, stride=stride, padding=padding)
    weights = {"0.weight": kernel[None, None], "0.bias": np.zeros(1)}
    network = FittedNetwork.build("numpy", (spec,), (1, *image.shape), weights,
                                  dtype=np.float64)
    return np.ascontiguousarray(network.forward(image[None, None], 0)[0, 0])
