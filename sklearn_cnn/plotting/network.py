"""Pictures of a fitted network's insides: its learned filters, and the feature maps
of one image after a layer.

Everything here reads the estimator's fitted network, ``clf.network_`` (a
:class:`~sklearn_cnn._network.FittedNetwork`): its layer list, its weights, and the
output of a layer, computed by the backend that trained the model.

Layers are chosen as ``layer=``: an int is a convolution's index among the Conv2d
layers (0 is the first), a str is a layer's key (``"3"``, or ``"3.body.0"`` inside a
residual block), as in ``clf.get_weights()``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._input import to_images
from ..layers import Conv2d
from ..summary import describe
from ._common import _deprecated, _diverging, _panels

__all__ = ["FeatureMapsDisplay", "FiltersDisplay", "feature_maps", "plot_feature_maps",
           "plot_filters"]


# ------------------------------------------------------------------------ layer lookup

def _fitted_network(clf, what: str):
    """The estimator's fitted network; NotFittedError if there is none, ValueError if
    it is a custom ``torch.nn.Module`` (``what`` needs the layer specs)."""
    check_is_fitted(clf)
    network = clf.network_
    network.require_specs(what)
    return network


def _convolutions(network) -> list:
    """The LayerInfo of every Conv2d layer, in order, residual blocks entered."""
    return [info for info in network.layers() if isinstance(info.spec, Conv2d)]


def _conv_layer(network, layer: int | str):
    """The Conv2d layer's LayerInfo, chosen by its index among the convolutions or by
    its key (``"2"`` or ``"2.weight"``)."""
    convs = _convolutions(network)
    if isinstance(layer, str):
        key = layer.removesuffix(".weight")
        found = [info for info in convs if info.key == key]
        if not found:
            raise ValueError(f"layer {layer!r} is not a Conv2d layer; the convolutions' "
                             f"keys are {[info.key for info in convs]}")
        return found[0]
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
            or not 0 <= layer < len(convs):
        raise ValueError(f"layer must be an int in [0, {len(convs) - 1}] (this network has "
                         f"{len(convs)} Conv2d layers) or a layer key, got {layer!r}")
    return convs[layer]


def _any_layer(network, layer: int | str):
    """A Conv2d's LayerInfo by its index among the convolutions, or any layer's by its
    key."""
    if not isinstance(layer, str):
        return _conv_layer(network, layer)
    entries = {info.key: info for info in network.layers()}
    if layer not in entries:
        raise ValueError(f"layer {layer!r} is not a layer key of this network; the keys "
                         f"are {list(entries)}")
    return entries[layer]


def _conv_name(network, key: str) -> str:
    """``"convolution 1 (layer 3)"``: a convolution's index among the convolutions and
    its key, the two numberings ``layer=`` accepts."""
    keys = [info.key for info in _convolutions(network)]
    return f"convolution {keys.index(key)} (layer {key})"


# ----------------------------------------------------------------------------- filters

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
        network = _fitted_network(clf, "FiltersDisplay")
        info = _conv_layer(network, layer)
        kernels = network.get_weights()[f"{info.key}.weight"][:max_filters]  # (O, C, kh, kw)
        channels = kernels.shape[1]
        shown = kernels[:, 0] if channels == 1 else kernels.mean(axis=1)
        title = f"Filters of {_conv_name(network, info.key)}: {describe(info.spec)}"
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


def plot_filters(clf, layer: int | str = 0, *, max_filters: int = 64):
    """Draw the learned kernels of one convolution layer.

    Deprecated: use ``FiltersDisplay.from_estimator(clf, ...).figure_``; this shortcut warns
    a FutureWarning and will be removed in a future release.

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
    _deprecated("plot_filters", "FiltersDisplay.from_estimator(clf, ...).figure_")
    return FiltersDisplay.from_estimator(clf, layer, max_filters=max_filters).figure_


# ------------------------------------------------------------------------ feature maps

def _one_image(clf, network, image) -> np.ndarray:
    """One image in any layout the estimator accepts -> (1, C, H, W) in the network's
    dtype."""
    array, n_values = np.asarray(image), math.prod(network.input_shape)
    if array.size != n_values:
        if array.ndim >= 2 and array.size == len(array) * n_values:
            raise ValueError(f"image must be one image, got a batch of {len(array)}")
        raise ValueError(f"image has {array.size} values, but the network takes images "
                         f"of shape {network.input_shape} ({n_values} values)")
    is_batch = array.ndim == 4 or (array.ndim == 2 and array.shape == (1, n_values))
    images = to_images(array if is_batch else array[None], input_shape=network.input_shape,
                       channels=getattr(clf, "channels", "auto"))
    return images.astype(network.dtype, copy=False)


def feature_maps(clf, image, layer: int | str = 0) -> np.ndarray:
    """The activations of one image after a layer of the fitted network.

    Computed by the estimator's fitted network, ``clf.network_``, in evaluation
    mode, on the backend that trained it.

    Parameters
    ----------
    clf : fitted CNNClassifier or CNNRegressor
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
        In the network's dtype (``clf.network_.dtype``).

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
    network = _fitted_network(clf, "feature maps")
    info = _any_layer(network, layer)
    if len(info.output_shape) != 3:
        raise ValueError(f"layer {info.key!r} ({describe(info.spec)}) outputs a vector of "
                         f"shape {info.output_shape}, not feature maps; choose a layer "
                         "before Flatten")
    images = _one_image(clf, network, image)
    return np.ascontiguousarray(network.forward(images, info.key)[0])


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
        activation; a str: any layer's key), at most ``max_maps`` channels, computed
        by the backend that trained the model."""
        maps = feature_maps(clf, image, layer)[:max_maps]
        network = clf.network_
        info = _any_layer(network, layer)
        where = (_conv_name(network, info.key) if isinstance(info.spec, Conv2d)
                 else f"layer {info.key}")
        return cls(maps, f"Feature maps after {where}: {describe(info.spec)}").plot(ax=ax)

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
    """Draw the activations of one image after a layer.

    Deprecated: use ``FeatureMapsDisplay.from_estimator(clf, image, ...).figure_``; this
    shortcut warns a FutureWarning and will be removed in a future release.
    :func:`feature_maps`, the array, stays.

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
    _deprecated("plot_feature_maps",
                "FeatureMapsDisplay.from_estimator(clf, image, ...).figure_")
    return FeatureMapsDisplay.from_estimator(clf, image, layer, max_maps=max_maps).figure_
