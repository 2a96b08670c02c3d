"""Pictures of a convolution and of a fitted CNN: filters, feature maps, loss curve,
misclassified images, explanations (saliency, Grad-CAM, occlusion).

Each picture is a scikit-learn style Display (``FiltersDisplay.from_estimator(clf)``,
``.plot(ax=...)``, ``.figure_``, ``.ax_``), so it composes into a figure of your own;
the ``plot_*`` functions are thin wrappers that return the Figure.

matplotlib is optional (``pip install 'sklearn-cnn[plot]'``) and imported only when a
function here is called. Every function draws on new figures (or on the axes given)
and returns them; none calls ``plt.show()``. For a confusion matrix, scikit-learn's
``ConfusionMatrixDisplay.from_estimator(clf, X, y)`` works with the estimator as is.

The convolutions drawn here are the package's own: :func:`plot_convolution` runs the
NumPy backend's Conv2d layer, and :func:`plot_feature_maps` rebuilds the fitted
network as a NumPy ``Network`` from ``specs_``, ``input_shape_`` and
``get_weights()``, so it shows the same numbers whichever backend trained the model.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_array, check_is_fitted

from ._input import to_images
from ._weights import walk
from .backends.numpy import Network
from .backends.numpy import layers as numpy_layers
from .layers import Conv2d, LayerSpec, Shape, conv_output_size
from .summary import _describe

__all__ = ["ConvolutionDisplay", "ExplanationDisplay", "FeatureMapsDisplay", "FiltersDisplay",
           "LossCurveDisplay", "MisclassifiedDisplay", "feature_maps", "plot_convolution",
           "plot_explanation", "plot_feature_maps", "plot_filters", "plot_loss_curve",
           "plot_misclassified"]

PANEL_INCHES = 1.3  # side of one small image in a grid of filters, maps or digits


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("sklearn_cnn.plotting needs matplotlib: "
                          "pip install 'sklearn-cnn[plot]'") from exc
    return plt


# --------------------------------------------------------------------------- convolution

class ConvolutionDisplay:
    """An image, a kernel and their convolution side by side, as a scikit-learn
    Display.

    The output is computed by the NumPy backend's own Conv2d layer (im2col and one
    matrix product), as a network computes it: a cross-correlation,
    ``Y[i, j] = sum_mn X[i*s + m, j*s + n] * K[m, n]`` over the zero-padded image.
    The titles give the shapes and the output-size formula
    ``(n + 2p - f) // s + 1`` (:func:`sklearn_cnn.layers.conv_output_size`).

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
        output = _convolve(image, kernel, stride, padding)
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
    """Draw an image, a kernel and their convolution side by side (see
    :class:`ConvolutionDisplay`, which this wraps).

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
    return ConvolutionDisplay.from_arrays(image, kernel, stride=stride, padding=padding,
                                          ax=ax).figure_


def _convolve(image: np.ndarray, kernel: np.ndarray, stride: int, padding: int
              ) -> np.ndarray:
    """One-channel convolution by the NumPy backend's Conv2d layer."""
    spec = Conv2d(1, kernel_size=kernel.shape, stride=stride, padding=padding, bias=False)
    layer = numpy_layers.Conv2d(spec, (1, *image.shape), {"weight": kernel[None, None]})
    return np.ascontiguousarray(layer.forward(image[None, None], training=False)[0, 0])


def _diverging(ax, values: np.ndarray, vmax: float | None = None):
    """Show values with zero in the middle of a red-blue scale (negative blue)."""
    vmax = float(np.abs(values).max()) if vmax is None else vmax
    vmax = vmax if vmax > 0 else 1.0
    return ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax)


def _write_values(ax, values: np.ndarray) -> None:
    """Write each value in its cell (a small kernel reads better with its numbers)."""
    rows, cols = np.indices(values.shape)
    strong = np.abs(values) > 0.6 * np.abs(values).max()  # dark cells: white text
    for i, j, value, dark in zip(rows.ravel(), cols.ravel(), values.ravel(), strong.ravel(),
                                 strict=True):
        ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=10,
                color="white" if dark else "black")


# ------------------------------------------------------------------ fitted networks

def _check_specs(clf, what: str) -> None:
    check_is_fitted(clf)
    if getattr(clf, "specs_", None) is None:
        raise ValueError(f"{what} needs an architecture made of sklearn_cnn.layers specs; "
                         "this estimator was fitted with a custom torch.nn.Module")


def _layers(clf) -> list[tuple[str, LayerSpec, Shape]]:
    """``(key, spec, input shape)`` of every layer, residual blocks entered."""
    return [(key, spec, shape) for key, spec, shape, _ in walk(clf.specs_, clf.input_shape_)]


def _conv_layer(clf, layer: int | str) -> tuple[str, LayerSpec, Shape]:
    """The Conv2d layer chosen by its index among the convolutions or by its key."""
    convs = [entry for entry in _layers(clf) if isinstance(entry[1], Conv2d)]
    if isinstance(layer, str):
        key = layer.removesuffix(".weight")
        found = [entry for entry in convs if entry[0] == key]
        if not found:
            raise ValueError(f"layer {layer!r} is not a Conv2d layer; the convolutions' "
                             f"keys are {[entry[0] for entry in convs]}")
        return found[0]
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
            or not 0 <= layer < len(convs):
        raise ValueError(f"layer must be an int in [0, {len(convs) - 1}] (this network has "
                         f"{len(convs)} Conv2d layers) or a layer key, got {layer!r}")
    return convs[layer]


def _any_layer(clf, layer: int | str) -> tuple[str, LayerSpec, Shape]:
    """A Conv2d by index among the convolutions, or any layer by its key."""
    if not isinstance(layer, str):
        return _conv_layer(clf, layer)
    entries = {key: (key, spec, shape) for key, spec, shape in _layers(clf)}
    if layer not in entries:
        raise ValueError(f"layer {layer!r} is not a layer key of this network; the keys "
                         f"are {list(entries)}")
    return entries[layer]


def _panels(n_panels: int, title: str, ax, max_cols: int = 8):
    """``(figure, axes)``: ``n_panels`` image axes, the first of ``ax`` (a user's
    figure; the title then goes on the first panel's figure only if it has none) or
    those of a new grid."""
    plt = _pyplot()
    if ax is None:
        return _grid(plt, n_panels, title, max_cols)
    axes = np.asarray(ax, dtype=object).ravel()
    if len(axes) < n_panels:
        raise ValueError(f"ax must hold at least {n_panels} Axes (one per panel), got "
                         f"{len(axes)}")
    for axis in axes[:n_panels]:
        axis.set_xticks([])
        axis.set_yticks([])
    return axes[0].figure, axes[:n_panels]


def _grid(plt, n_panels: int, title: str, max_cols: int = 8):
    """A figure with ``n_panels`` small image axes (spare grid cells removed)."""
    n_cols = min(n_panels, max_cols)
    n_rows = math.ceil(n_panels / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained",
                             figsize=(PANEL_INCHES * n_cols + 0.8,
                                      PANEL_INCHES * n_rows + 0.6))
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes.ravel()[n_panels:]:
        axis.remove()
    fig.suptitle(title)
    return fig, axes.ravel()[:n_panels]


class FiltersDisplay:
    """The learned kernels of one convolution layer, one panel per filter, as a
    scikit-learn Display.

    Parameters
    ----------
    kernels : ndarray of shape (n_filters, kh, kw)
        What each panel shows (a kernel over several input channels: their mean).
    title : str

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : ndarray of matplotlib Axes, one per filter

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import FiltersDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> display = FiltersDisplay.from_estimator(clf, layer=1)
    >>> display.title.splitlines()[0]
    'Filters of convolution 1 (layer 2): Conv2d 16@5x5 padding=same'
    >>> len(display.ax_)
    16
    """

    def __init__(self, kernels, title: str = "Filters"):
        self.kernels, self.title = np.asarray(kernels), title

    @classmethod
    def from_estimator(cls, clf, layer: int | str = 0, *, max_filters: int = 64,
                       ax=None) -> FiltersDisplay:
        """Draw the filters of a fitted estimator's convolution ``layer``: its index
        among the Conv2d layers (0 is the first) or its key (``"3"`` or ``"3.weight"``,
        as in ``clf.get_weights()``); at most ``max_filters``, on ``ax`` or a new
        figure. Raises NotFittedError if ``clf`` is not fitted, ValueError if
        ``layer`` names no convolution or ``clf`` has a custom torch module."""
        _check_specs(clf, "plot_filters")
        key, spec, _ = _conv_layer(clf, layer)
        kernels = clf.get_weights()[f"{key}.weight"][:max_filters]  # (O, C, kh, kw)
        channels = kernels.shape[1]
        shown = kernels[:, 0] if channels == 1 else kernels.mean(axis=1)
        title = f"Filters of {_conv_name(clf, key)}: {_describe(spec)}"
        if channels > 1:
            title += f"\n(mean over {channels} input channels)"
        return cls(shown, title).plot(ax=ax)

    def plot(self, ax=None) -> FiltersDisplay:
        """Draw on ``ax`` (at least one Axes per filter) or on a new figure."""
        fig, axes = _panels(len(self.kernels), self.title, ax)
        vmax = float(np.abs(self.kernels).max())
        for index, (axis, kernel) in enumerate(zip(axes, self.kernels, strict=True)):
            _diverging(axis, kernel, vmax)
            axis.set_title(f"#{index}", fontsize=8)
        self.figure_, self.ax_ = fig, axes
        return self


def _conv_name(clf, key: str) -> str:
    """``"convolution 1 (layer 3)"``: a convolution's index among the convolutions and
    its key, the two numberings ``layer=`` accepts."""
    convs = [entry[0] for entry in _layers(clf) if isinstance(entry[1], Conv2d)]
    return f"convolution {convs.index(key)} (layer {key})"


def plot_filters(clf, layer: int | str = 0, *, max_filters: int = 64):
    """Draw the learned kernels of one convolution layer (see :class:`FiltersDisplay`,
    which this wraps).

    Parameters
    ----------
    clf : fitted CNNClassifier or CNNRegressor
    layer : int or str, default=0
        The convolution's index among the Conv2d layers, or its key.
    max_filters : int, default=64

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    return FiltersDisplay.from_estimator(clf, layer, max_filters=max_filters).figure_


def _one_image(clf, image) -> np.ndarray:
    """One image in any layout the estimator accepts -> float32 (1, C, H, W)."""
    array, n_values = np.asarray(image), clf.n_features_in_
    if array.size != n_values:
        if array.ndim >= 2 and array.size == len(array) * n_values:
            raise ValueError(f"image must be one image, got a batch of {len(array)}")
        raise ValueError(f"image has {array.size} values, but the network takes images "
                         f"of shape {clf.input_shape_} ({n_values} values)")
    is_batch = array.ndim == 4 or (array.ndim == 2 and array.shape == (1, n_values))
    images = to_images(array if is_batch else array[None], input_shape=clf.input_shape_,
                       channels=clf.channels)
    return images.astype(np.float32, copy=False)


def feature_maps(clf, image, layer: int | str = 0) -> np.ndarray:
    """The activations of one image after a layer of the fitted network.

    Computed by a NumPy ``Network`` rebuilt from ``clf.specs_``, ``clf.input_shape_``
    and ``clf.get_weights()`` in evaluation mode, so it gives the same numbers for a
    model trained with either backend.

    Parameters
    ----------
    clf : fitted CNNClassifier
    image : array-like
        One image in any layout the estimator accepts: ``(H, W)``, ``(C, H, W)``,
        ``(H, W, C)``, flat ``(C*H*W,)``, or a batch of one of these.
    layer : int or str, default=0
        An int is an index among the Conv2d layers: the maps are that convolution's
        output (before its activation). A str is any layer's key (``"1"``, the
        ReLU after LeNet's first convolution; ``"3.body.0"`` inside a residual
        block): the maps are that layer's output.

    Returns
    -------
    ndarray of shape (C_out, H_out, W_out)

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import feature_maps
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> feature_maps(clf, X[0], layer=1).shape     # LeNet's second convolution
    (16, 8, 8)
    >>> bool((feature_maps(clf, X[0], layer="1") >= 0).all())   # after a ReLU
    True
    """
    _check_specs(clf, "feature maps")
    key, spec, in_shape = _any_layer(clf, layer)
    out_shape = spec.output_shape(in_shape)
    if len(out_shape) != 3:
        raise ValueError(f"layer {key!r} ({_describe(spec)}) outputs a vector of shape "
                         f"{out_shape}, not feature maps; choose a layer before Flatten")
    images = _one_image(clf, image)
    network = Network(clf.specs_, clf.input_shape_, clf.get_weights())
    return np.ascontiguousarray(network.forward_to(images, key)[0])


class FeatureMapsDisplay:
    """The activations of one image after a layer, one panel per channel (all on one
    colour scale, so a dead channel looks flat), as a scikit-learn Display.

    Parameters
    ----------
    maps : ndarray of shape (n_channels, H, W)
    title : str

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : ndarray of matplotlib Axes, one per channel

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import FeatureMapsDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> display = FeatureMapsDisplay.from_estimator(clf, X[0], layer="1")
    >>> len(display.ax_), display.ax_[0].images[0].get_array().shape
    (6, (8, 8))
    """

    def __init__(self, maps, title: str = "Feature maps"):
        self.maps, self.title = np.asarray(maps), title

    @classmethod
    def from_estimator(cls, clf, image, layer: int | str = 0, *, max_maps: int = 64,
                       ax=None) -> FeatureMapsDisplay:
        """Draw :func:`feature_maps` of one ``image`` after ``layer`` (an int: a
        convolution's index among the Conv2d layers, its output before the
        activation; a str: any layer's key), at most ``max_maps`` channels. Works for
        models of either backend: the network is rebuilt in NumPy."""
        maps = feature_maps(clf, image, layer)[:max_maps]
        key, spec, _ = _any_layer(clf, layer)
        where = _conv_name(clf, key) if isinstance(spec, Conv2d) else f"layer {key}"
        return cls(maps, f"Feature maps after {where}: {_describe(spec)}").plot(ax=ax)

    def plot(self, ax=None) -> FeatureMapsDisplay:
        """Draw on ``ax`` (at least one Axes per channel) or on a new figure."""
        fig, axes = _panels(len(self.maps), self.title, ax)
        low, high = float(self.maps.min()), float(self.maps.max())
        for index, (axis, activation) in enumerate(zip(axes, self.maps, strict=True)):
            axis.imshow(activation, cmap="viridis", vmin=low,
                        vmax=high if high > low else low + 1)
            axis.set_title(f"#{index}", fontsize=8)
        self.figure_, self.ax_ = fig, axes
        return self


def plot_feature_maps(clf, image, layer: int | str = 0, *, max_maps: int = 64):
    """Draw the activations of one image after a layer (see
    :class:`FeatureMapsDisplay`, which this wraps).

    Parameters
    ----------
    clf : fitted CNNClassifier or CNNRegressor
    image : array-like
        One image in any layout the estimator accepts.
    layer : int or str, default=0
    max_maps : int, default=64

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    return FeatureMapsDisplay.from_estimator(clf, image, layer, max_maps=max_maps).figure_


class LossCurveDisplay:
    """Training loss per epoch and, with early stopping, the validation score per
    epoch on a second y axis, as a scikit-learn Display. Epochs are whole numbers on
    the x axis.

    Parameters
    ----------
    loss_curve : sequence of float
    validation_scores : sequence of float or None
    score_name : str, default="validation accuracy"

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : matplotlib Axes
        The loss axis.
    validation_ax_ : matplotlib Axes or None
        Its twin with the validation scores, when there are some.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import LossCurveDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=2, early_stopping=True, random_state=0)
    >>> display = LossCurveDisplay.from_estimator(clf.fit(X[:200], y[:200]))
    >>> len(display.ax_.lines[0].get_xdata()), display.validation_ax_ is not None
    (2, True)
    """

    def __init__(self, loss_curve, validation_scores=None,
                 score_name: str = "validation accuracy"):
        self.loss_curve = list(loss_curve)
        self.validation_scores = None if not validation_scores else list(validation_scores)
        self.score_name = score_name

    @classmethod
    def from_estimator(cls, clf, ax=None) -> LossCurveDisplay:
        """Draw a fitted estimator's ``loss_curve_`` and ``validation_scores_``
        (accuracy for a classifier, R^2 for a regressor) on ``ax`` or a new figure."""
        from sklearn.base import is_regressor

        check_is_fitted(clf)
        name = "validation R^2" if is_regressor(clf) else "validation accuracy"
        return cls(clf.loss_curve_, getattr(clf, "validation_scores_", None),
                   name).plot(ax=ax)

    def plot(self, ax=None) -> LossCurveDisplay:
        """Draw on ``ax`` or on a new figure; returns ``self``."""
        from matplotlib.ticker import MaxNLocator

        plt = _pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        else:
            fig = ax.figure
        losses = np.asarray(self.loss_curve, dtype=float)
        epochs = np.arange(1, len(losses) + 1)
        ax.plot(epochs, losses, "o-", color="tab:blue", markersize=3, label="training loss")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("training loss", color="tab:blue")
        ax.set_title("Training history")
        twin = None
        if self.validation_scores:
            twin = ax.twinx()
            twin.plot(epochs[-len(self.validation_scores):], self.validation_scores, "s-",
                      color="tab:orange", markersize=3, label=self.score_name)
            twin.set_ylabel(self.score_name, color="tab:orange")
        ax.grid(alpha=0.3)
        self.figure_, self.ax_, self.validation_ax_ = fig, ax, twin
        return self


def plot_loss_curve(clf, ax=None):
    """Draw the training loss per epoch and the validation score, if any (see
    :class:`LossCurveDisplay`, which this wraps).

    Parameters
    ----------
    clf : fitted CNNClassifier or CNNRegressor
    ax : matplotlib Axes, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``fig.axes[0]`` is the loss axis (the first axis of a given figure is
        ``ax``); the validation axis, when drawn, is ``fig.axes[-1]``.
    """
    return LossCurveDisplay.from_estimator(clf, ax=ax).figure_


def _displayable(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> what imshow draws: (N, H, W) gray, or (N, H, W, 3|4) colour
    scaled to [0, 1] per image; other channel counts are averaged to gray."""
    channels = images.shape[1]
    if channels not in (3, 4):
        return images.mean(axis=1) if channels > 1 else images[:, 0]
    colour = images.transpose(0, 2, 3, 1)
    low = colour.min(axis=(1, 2, 3), keepdims=True)
    span = colour.max(axis=(1, 2, 3), keepdims=True) - low
    return (colour - low) / np.where(span > 0, span, 1)


class MisclassifiedDisplay:
    """The images a classifier gets wrong, titled ``true / predicted``, as a
    scikit-learn Display.

    Parameters
    ----------
    images : ndarray of shape (n_shown, C, H, W)
    true, predicted : sequence of str
        The labels to write (class names, when given).
    n_wrong, n_total : int
        How many mistakes there are in all, among how many images (the title).

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : ndarray of matplotlib Axes, one per shown image (one empty panel when
        there is no mistake)

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import MisclassifiedDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
    ...          "nine"]
    >>> display = MisclassifiedDisplay.from_estimator(clf, X[200:400], y[200:400],
    ...                                              max_images=4, class_names=names)
    >>> len(display.ax_), " / " in display.ax_[0].get_title()
    (4, True)
    """

    def __init__(self, images, true, predicted, n_wrong: int, n_total: int):
        self.images = np.asarray(images)
        self.true, self.predicted = [str(t) for t in true], [str(p) for p in predicted]
        self.n_wrong, self.n_total = int(n_wrong), int(n_total)

    @classmethod
    def from_estimator(cls, clf, X, y, *, max_images: int = 16, class_names=None,
                       ax=None) -> MisclassifiedDisplay:
        """Predict X, and draw the first ``max_images`` images whose prediction is not
        ``y``; ``class_names`` (in the order of ``clf.classes_``) names the labels."""
        check_is_fitted(clf)
        y = np.asarray(y)
        predicted = clf.predict(X)
        if len(y) != len(predicted):
            raise ValueError(f"X holds {len(predicted)} images but y has {len(y)} labels")
        wrong = np.flatnonzero(predicted != y)
        shown = wrong[:max_images]
        images = to_images(X, input_shape=getattr(clf, "input_shape_", None),
                           channels=getattr(clf, "channels", "auto"))[shown]
        return cls(images, [_label_text(clf, v, class_names) for v in y[shown]],
                   [_label_text(clf, v, class_names) for v in predicted[shown]],
                   len(wrong), len(y)).plot(ax=ax)

    def plot(self, ax=None) -> MisclassifiedDisplay:
        """Draw on ``ax`` (at least one Axes per image) or on a new figure."""
        title = f"{self.n_wrong} of {self.n_total} images misclassified (true / predicted)"
        if not len(self.images):
            fig, axes = _panels(1, title, ax)
            axes[0].text(0.5, 0.5, "none", ha="center", va="center")
            self.figure_, self.ax_ = fig, axes
            return self
        fig, axes = _panels(len(self.images), title, ax,
                            max_cols=min(8, math.ceil(len(self.images) ** 0.5)))
        for axis, picture, true, guess in zip(axes, _displayable(self.images), self.true,
                                              self.predicted, strict=True):
            axis.imshow(picture, cmap="gray")
            axis.set_title(f"{true} / {guess}", fontsize=9, color="tab:red")
        self.figure_, self.ax_ = fig, axes
        return self


def plot_misclassified(clf, X, y, max_images: int = 16, *, class_names=None):
    """Draw the images the classifier gets wrong (see :class:`MisclassifiedDisplay`,
    which this wraps).

    Parameters
    ----------
    clf : fitted CNNClassifier
    X : array-like of images, in any layout ``fit`` accepts
    y : array-like of shape (n_samples,)
        True labels.
    max_images : int, default=16
    class_names : sequence of str, default=None
        Names of ``clf.classes_``, in their order, for the titles.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    return MisclassifiedDisplay.from_estimator(clf, X, y, max_images=max_images,
                                               class_names=class_names).figure_


# --------------------------------------------------------------------------- explanations

#: how each method's map is drawn: colour map, and whether it is signed (centred on 0)
_MAP_STYLES = {"saliency": ("inferno", False), "grad_cam": ("inferno", False),
               "occlusion": ("RdBu_r", True)}


class ExplanationDisplay:
    """Images beside their explanation maps, as a scikit-learn Display.

    One row per image: the image, then for each method its map and the map laid over
    the image. Build it with :meth:`from_estimator` (which computes the maps with
    :mod:`sklearn_cnn.inspection`), or from maps of your own, then :meth:`plot`.

    Parameters
    ----------
    images : ndarray of shape (n_images, C, H, W)
    maps : dict of str to ndarray of shape (n_images, H, W)
        Method name (``"saliency"``, ``"grad_cam"``, ``"occlusion"`` or any other)
        to its maps.
    titles : list of str, default=None
        One title per image (the predicted label, say).

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : ndarray of matplotlib Axes, shape (n_images, 1 + 2 * n_methods)

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import ExplanationDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=2, random_state=0).fit(X[:300], y[:300])
    >>> display = ExplanationDisplay.from_estimator(clf, X[:2], methods=["saliency"])
    >>> display.ax_.shape
    (2, 3)
    """

    def __init__(self, images, maps: dict, titles=None):
        self.images = np.asarray(images)
        self.maps = {name: np.asarray(values) for name, values in maps.items()}
        self.titles = None if titles is None else [str(t) for t in titles]

    @classmethod
    def from_estimator(cls, estimator, X, *, methods=("saliency", "grad_cam", "occlusion"),
                       target=None, class_names=None, ax=None) -> ExplanationDisplay:
        """Compute the maps of ``methods`` for the images X and plot them.

        Parameters
        ----------
        estimator : fitted CNNClassifier or CNNRegressor
        X : array-like of images, in any layout ``fit`` accepts
        methods : sequence of {"saliency", "grad_cam", "occlusion"}
        target : class label, output index, array of one per image, or None
            What to explain (see :func:`sklearn_cnn.inspection.input_gradient`).
        class_names : sequence of str, default=None
            Names of a classifier's ``classes_``, in their order, for the titles.
        ax : array of matplotlib Axes of shape (n_images, 1 + 2 * len(methods)), \
default=None
            Where to draw; by default a new figure.

        Returns
        -------
        ExplanationDisplay
        """
        from . import inspection

        known = {"saliency": inspection.saliency, "grad_cam": inspection.grad_cam,
                 "occlusion": inspection.occlusion}
        unknown = [m for m in methods if m not in known]
        if unknown or not len(methods):
            raise ValueError(f"methods must be some of {list(known)}; got {list(methods)}")
        images = inspection._fitted_images(estimator, X)[1]
        maps = {m: known[m](estimator, images, target) for m in methods}
        predicted = estimator.predict(images)
        titles = [_label_text(estimator, value, class_names) for value in predicted]
        return cls(images, maps, titles).plot(ax=ax)

    def plot(self, ax=None) -> ExplanationDisplay:
        """Draw the images and maps on ``ax`` (an array of Axes of shape
        ``(n_images, 1 + 2 * n_methods)``) or on a new figure; returns ``self``."""
        plt = _pyplot()
        n_images, n_columns = len(self.images), 1 + 2 * len(self.maps)
        if ax is None:
            fig, axes = plt.subplots(n_images, n_columns, squeeze=False, layout="constrained",
                                     figsize=(PANEL_INCHES * n_columns + 0.4,
                                              PANEL_INCHES * n_images + 0.6))
        else:
            axes = np.asarray(ax, dtype=object).reshape(-1)
            if axes.size != n_images * n_columns:
                raise ValueError(f"ax must hold {n_images} x {n_columns} Axes (one row per "
                                 f"image: the image, then map and overlay per method); "
                                 f"got {axes.size}")
            axes = axes.reshape(n_images, n_columns)
            fig = axes[0, 0].figure
        pictures = _displayable(self.images if self.images.ndim == 4 else self.images[:, None])
        for row, picture in enumerate(pictures):
            axes[row, 0].imshow(picture, cmap="gray")
            axes[row, 0].set_title(self.titles[row] if self.titles else "image", fontsize=9)
            for column, (name, values) in enumerate(self.maps.items()):
                cmap, signed = _MAP_STYLES.get(name, ("inferno", False))
                limit = float(np.abs(values[row]).max()) or 1.0
                low = -limit if signed else 0.0
                map_ax, overlay_ax = axes[row, 1 + 2 * column], axes[row, 2 + 2 * column]
                map_ax.imshow(values[row], cmap=cmap, vmin=low, vmax=limit)
                overlay_ax.imshow(picture, cmap="gray")
                overlay_ax.imshow(values[row], cmap=cmap, vmin=low, vmax=limit, alpha=0.55)
                if row == 0:
                    map_ax.set_title(name.replace("_", "-"), fontsize=9)
                    overlay_ax.set_title("overlay", fontsize=9)
        for axis in axes.ravel():
            axis.set_xticks([])
            axis.set_yticks([])
        self.figure_, self.ax_ = fig, axes
        return self


def _label_text(estimator, value, class_names) -> str:
    """A prediction as a title: a class (by its name when given) or a value."""
    if class_names is None or not hasattr(estimator, "classes_"):
        return f"{value:.3g}" if isinstance(value, float | np.floating) else str(value)
    names = list(class_names)
    if len(names) != len(estimator.classes_):
        raise ValueError(f"class_names has {len(names)} names for "
                         f"{len(estimator.classes_)} classes")
    return str(names[int(np.flatnonzero(estimator.classes_ == value)[0])])


def plot_explanation(estimator, X, *, methods=("saliency", "grad_cam", "occlusion"),
                     target=None, class_names=None):
    """Draw images beside their saliency, Grad-CAM and occlusion maps (see
    :class:`ExplanationDisplay`, which this wraps).

    Parameters
    ----------
    estimator : fitted CNNClassifier or CNNRegressor
    X : array-like of images, in any layout ``fit`` accepts
    methods : sequence of {"saliency", "grad_cam", "occlusion"}
    target : class label, output index, array of one per image, or None
    class_names : sequence of str, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    return ExplanationDisplay.from_estimator(estimator, X, methods=methods, target=target,
                                             class_names=class_names).figure_
