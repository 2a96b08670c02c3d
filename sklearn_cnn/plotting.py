"""Pictures of a convolution and of a fitted CNN: filters, feature maps, loss curve,
misclassified images, explanations (saliency, Grad-CAM, occlusion).

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

__all__ = ["ExplanationDisplay", "feature_maps", "plot_convolution", "plot_explanation",
           "plot_feature_maps", "plot_filters", "plot_loss_curve", "plot_misclassified"]

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

def plot_convolution(image, kernel, *, stride: int = 1, padding: int = 0, ax=None):
    """Draw an image, a kernel and their convolution side by side.

    The output is computed by the NumPy backend's own Conv2d layer (im2col and one
    matrix product), as a network computes it: a cross-correlation,
    ``Y[i, j] = sum_mn X[i*s + m, j*s + n] * K[m, n]`` over the zero-padded image.
    The titles give the shapes and the output-size formula
    ``(n + 2p - f) // s + 1`` (:func:`sklearn_cnn.layers.conv_output_size`).

    Parameters
    ----------
    image : array-like of shape (H, W)
        A grayscale image.
    kernel : array-like of shape (kh, kw)
        The filter; values are written in its cells when it has at most 7x7 of them.
    stride : int, default=1
        Step between neighbouring windows.
    padding : int, default=0
        Zeros added on every side of the image.
    ax : sequence of 3 matplotlib Axes, default=None
        Where to draw input, kernel and output; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of 3 matplotlib Axes
        Input, kernel and output. ``axes[2].images[0].get_array()`` is the output.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_cnn.plotting import plot_convolution
    >>> image = np.zeros((8, 8))
    >>> image[:, :4] = 1.0                        # bright left half: a vertical edge
    >>> kernel = np.array([[1.0, 0.0, -1.0]] * 3)   # responds to vertical edges
    >>> fig, axes = plot_convolution(image, kernel)
    >>> output = np.asarray(axes[2].images[0].get_array())
    >>> output[0]                                 # strong only where the edge is
    array([0., 0., 3., 3., 0., 0.])
    >>> axes[2].get_title()
    'Output 6x6'
    """
    plt = _pyplot()
    image = check_array(image, dtype=np.float64, input_name="image")
    kernel = check_array(kernel, dtype=np.float64, ensure_min_samples=1,
                         ensure_min_features=1, input_name="kernel")
    for name, value, low in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    sizes = [conv_output_size(n, f, padding, stride)
             for n, f in zip(image.shape, kernel.shape, strict=True)]
    if min(sizes) < 1:
        raise ValueError(f"kernel {kernel.shape} does not fit image {image.shape} with "
                         f"padding {padding}")
    output = _convolve(image, kernel, stride, padding)

    if ax is None:
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
    else:
        axes = np.asarray(ax, dtype=object).ravel()
        if len(axes) != 3:
            raise ValueError(f"ax must hold 3 Axes (input, kernel, output), got {len(axes)}")
        fig = axes[0].figure

    (h, w), (kh, kw) = image.shape, kernel.shape
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title(f"Input {h}x{w}" + (f", padding {padding}" if padding else ""))
    _diverging(axes[1], kernel)
    axes[1].set_title(f"Kernel {kh}x{kw}" + (f", stride {stride}" if stride > 1 else ""))
    if kh * kw <= 49:
        _write_values(axes[1], kernel)
    image_out = _diverging(axes[2], output)
    axes[2].set_title(f"Output {sizes[0]}x{sizes[1]}")
    formulas = {f"({n} + 2*{padding} - {f}) // {stride} + 1 = {size}"
                for n, f, size in zip(image.shape, kernel.shape, sizes, strict=True)}
    axes[2].set_xlabel("\n".join(sorted(formulas)), fontsize=9)
    fig.colorbar(image_out, ax=axes[2], shrink=0.8)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    return fig, axes


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


def plot_filters(clf, layer: int | str = 0, *, max_filters: int = 64):
    """Draw the learned kernels of one convolution layer, one panel per filter.

    Parameters
    ----------
    clf : fitted CNNClassifier
    layer : int or str, default=0
        Which convolution: its index among the network's Conv2d layers (0 is the
        first), or its canonical key (``"0"`` or ``"0.weight"``, as in
        ``clf.get_weights()``).
    max_filters : int, default=64
        Draw at most the first this many filters.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per output channel, on one red-blue scale centred at 0. A kernel
        over one input channel is drawn as is; over several, their mean is drawn
        (the title says so).

    Raises
    ------
    NotFittedError
        If ``clf`` is not fitted.
    ValueError
        If ``layer`` names no convolution, or ``clf`` was fitted with a custom
        torch module.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_filters
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> fig = plot_filters(clf, layer=0)              # LeNet's six 5x5 filters
    >>> len(fig.axes)
    6
    """
    plt = _pyplot()
    _check_specs(clf, "plot_filters")
    key, spec, _ = _conv_layer(clf, layer)
    kernels = clf.get_weights()[f"{key}.weight"][:max_filters]  # (O, C, kh, kw)
    channels = kernels.shape[1]
    shown = kernels[:, 0] if channels == 1 else kernels.mean(axis=1)
    title = f"Filters of layer {key}: {_describe(spec)}"
    if channels > 1:
        title += f"\n(mean over {channels} input channels)"
    fig, axes = _grid(plt, len(shown), title)
    vmax = float(np.abs(shown).max())
    for index, (axis, kernel) in enumerate(zip(axes, shown, strict=True)):
        _diverging(axis, kernel, vmax)
        axis.set_title(f"#{index}", fontsize=8)
    return fig


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


def plot_feature_maps(clf, image, layer: int | str = 0, *, max_maps: int = 64):
    """Draw the activations of one image after a layer, one panel per channel.

    Works for models trained with either backend (torch is not needed): the
    network is rebuilt in NumPy from the fitted specs and weights.

    Parameters
    ----------
    clf : fitted CNNClassifier
    image : array-like
        One image in any layout the estimator accepts: ``(H, W)``, ``(C, H, W)``,
        ``(H, W, C)``, flat ``(C*H*W,)``, or a batch of one of these.
    layer : int or str, default=0
        An int is an index among the Conv2d layers (the convolution's output,
        before its activation); a str is any layer's key, as in
        ``clf.get_weights()`` (``"1"``: LeNet's first ReLU).
    max_maps : int, default=64
        Draw at most the first this many channels.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per channel, all on one colour scale (a dead channel looks flat).

    Raises
    ------
    NotFittedError
        If ``clf`` is not fitted.
    ValueError
        If ``layer`` names no layer or one that outputs vectors, if ``image`` is not
        one image of the fitted shape, or if ``clf`` was fitted with a custom torch
        module.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_feature_maps
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> fig = plot_feature_maps(clf, X[0], layer="1")   # after the first ReLU
    >>> len(fig.axes), fig.axes[0].images[0].get_array().shape
    (6, (8, 8))
    """
    plt = _pyplot()
    maps = feature_maps(clf, image, layer)[:max_maps]
    key, spec, _ = _any_layer(clf, layer)
    fig, axes = _grid(plt, len(maps), f"Feature maps after layer {key}: {_describe(spec)}")
    low, high = float(maps.min()), float(maps.max())
    for index, (axis, activation) in enumerate(zip(axes, maps, strict=True)):
        axis.imshow(activation, cmap="viridis", vmin=low, vmax=high if high > low else low + 1)
        axis.set_title(f"#{index}", fontsize=8)
    return fig


def plot_loss_curve(clf, ax=None):
    """Draw the training loss per epoch and, with early stopping, the validation
    score per epoch on a second y axis.

    Parameters
    ----------
    clf : fitted CNNClassifier
        Any fitted estimator with ``loss_curve_`` (and ``validation_scores_``).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : matplotlib Axes
        The loss axis; the validation axis, when drawn, is its twin
        (``fig.axes[-1]``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_loss_curve
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=2, early_stopping=True, random_state=0)
    >>> fig, ax = plot_loss_curve(clf.fit(X[:200], y[:200]))
    >>> len(ax.lines[0].get_xdata()), len(fig.axes)     # 2 epochs, loss and score axes
    (2, 2)
    """
    plt = _pyplot()
    check_is_fitted(clf)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    else:
        fig = ax.figure
    losses = np.asarray(clf.loss_curve_, dtype=float)
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, "o-", color="tab:blue", markersize=3, label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.set_title("Training history")
    scores = getattr(clf, "validation_scores_", None)
    if scores:
        twin = ax.twinx()
        twin.plot(epochs[-len(scores):], scores, "s-", color="tab:orange", markersize=3,
                  label="validation accuracy")
        twin.set_ylabel("validation accuracy", color="tab:orange")
    ax.grid(alpha=0.3)
    return fig, ax


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


def plot_misclassified(clf, X, y, max_images: int = 16):
    """Draw the images the classifier gets wrong, titled ``true / predicted``.

    Parameters
    ----------
    clf : fitted CNNClassifier
    X : array-like of images, in any layout ``fit`` accepts
    y : array-like of shape (n_samples,)
        True labels.
    max_images : int, default=16
        Draw at most the first this many mistakes.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per misclassified image (in the order of X); the title counts
        all mistakes. Without mistakes, one empty panel says so.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_misclassified
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> fig = plot_misclassified(clf, X[200:400], y[200:400], max_images=4)
    >>> len(fig.axes)
    4
    """
    plt = _pyplot()
    check_is_fitted(clf)
    y = np.asarray(y)
    predicted = clf.predict(X)
    if len(y) != len(predicted):
        raise ValueError(f"X holds {len(predicted)} images but y has {len(y)} labels")
    wrong = np.flatnonzero(predicted != y)
    shown = wrong[:max_images]
    title = f"{len(wrong)} of {len(y)} images misclassified (true / predicted)"
    if not len(shown):
        fig, axes = _grid(plt, 1, title)
        axes[0].text(0.5, 0.5, "none", ha="center", va="center")
        return fig
    input_shape = getattr(clf, "input_shape_", None)
    images = to_images(X, input_shape=input_shape, channels=getattr(clf, "channels", "auto"))
    pictures = _displayable(images[shown])
    fig, axes = _grid(plt, len(shown), title, max_cols=min(8, math.ceil(len(shown) ** 0.5)))
    for axis, picture, true, guess in zip(axes, pictures, y[shown], predicted[shown],
                                          strict=True):
        axis.imshow(picture, cmap="gray")
        axis.set_title(f"{true} / {guess}", fontsize=9, color="tab:red")
    return fig


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
