"""What a trained network looks at: saliency, Grad-CAM and occlusion maps.

Each function takes a fitted :class:`~sklearn_cnn.CNNClassifier` or
:class:`~sklearn_cnn.CNNRegressor` and images in any layout ``fit`` accepts, and
returns one map per image, ``(n_samples, H, W)``, aligned with the images.

The explained *score* is, for a classifier, the logit (the output before the
softmax) of the ``target`` class, by default the predicted one (as Simonyan et al.
2014 and Selvaraju et al. 2017 use the class score); for a regressor, the predicted
value of output ``target`` (in the targets' units).

- :func:`input_gradient`: d score / d pixel, ``(n, C, H, W)``, signed.
- :func:`saliency`: its absolute value, the largest over the channels (Simonyan et
  al., "Deep Inside Convolutional Networks", 2014); optionally times the input
  (Shrikumar et al. 2016) and averaged over noisy copies (SmoothGrad, Smilkov et
  al. 2017).
- :func:`grad_cam`: the feature maps of a layer (by default the last convolution's,
  after its activation) weighted by the spatial mean of the score's gradient, summed
  over channels, clipped at 0 and upsampled bilinearly to the image (Selvaraju et
  al., "Grad-CAM", 2017).
- :func:`occlusion`: how much the score drops when a square patch is greyed out (set
  to the image's mean), averaged over the patches covering each pixel (Zeiler &
  Fergus, "Visualizing and Understanding Convolutional Networks", 2014); all
  occluded copies are predicted in batches.

The NumPy backend computes the gradients with its own layers' backward passes (on a
twin of the network whose first layer also returns the input gradient); the torch
backend with autograd. Both give the same maps for the same weights.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._base import BaseCNN
from ._streaming import ImageStream
from .augment import _bilinear
from .layers import Conv2d, Residual

__all__ = ["grad_cam", "input_gradient", "occlusion", "saliency"]

#: layers that keep a convolution's map as it is, pixel by pixel: Grad-CAM's default
#: layer is the last convolution followed by those of them that come right after it
_ELEMENTWISE = ("BatchNorm", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Dropout")
#: occluded copies predicted per pass (bounds the memory of :func:`occlusion`)
OCCLUSION_BATCH = 2048
#: images read at a time from images read batch by batch (see ``_streaming``)
STREAM_CHUNK = 1024


def fitted_images(estimator, X):
    """The estimator's fitted network and X as validated images (the estimator's own
    checks: NotFittedError, shape and dtype)."""
    if not isinstance(estimator, BaseCNN):
        raise TypeError(f"sklearn_cnn.inspection explains a fitted CNNClassifier or "
                        f"CNNRegressor, got {type(estimator).__name__}; for a Pipeline, "
                        "explain its last step on the transformed images: "
                        "saliency(pipe[-1], pipe[:-1].transform(X))")
    check_is_fitted(estimator)
    network = estimator.network_
    return network, network.images(X, channels=estimator.channels,
                                   input_shape=estimator.input_shape,
                                   owner=type(estimator).__name__)


def _score_gradient(estimator, outputs: np.ndarray, target) -> np.ndarray:
    """``(n, n_outputs)``: how the explained score is made of the network's outputs
    (a one-hot row per image; a regressor's row scaled to the targets' units)."""
    n, n_outputs = outputs.shape
    if is_classifier(estimator):
        if target is None:
            columns = outputs.argmax(axis=1)
        else:
            labels = np.asarray(target, dtype=object if np.ndim(target) == 0 else None)
            labels = np.broadcast_to(labels, (n,)) if labels.ndim == 0 else labels
            if labels.shape != (n,):
                raise ValueError(f"target must be one class label or one per image "
                                 f"({n}); got shape {labels.shape}")
            classes = estimator.classes_
            known = np.isin(labels, classes)
            if not known.all():
                raise ValueError(f"target {labels[~known][0]!r} is not a class of this "
                                 f"classifier; its classes are {classes.tolist()}")
            columns = np.array([np.flatnonzero(classes == label)[0] for label in labels]) \
                if classes.dtype == object else np.searchsorted(classes, labels)
        scale = np.ones(n)
    else:
        if target is None:
            if n_outputs != 1:
                raise ValueError(f"this regressor has {n_outputs} outputs; pass the one to "
                                 f"explain as target=0..{n_outputs - 1}")
            target = 0
        columns = np.broadcast_to(np.asarray(target), (n,)) if np.ndim(target) == 0 \
            else np.asarray(target)
        if columns.shape != (n,) or columns.dtype.kind not in "iu" \
                or columns.min() < 0 or columns.max() >= n_outputs:
            raise ValueError(f"target must be an output index in [0, {n_outputs}) or one "
                             f"per image; got {target!r}")
        scale = estimator.target_scale_[columns]
    output_grad = np.zeros((n, n_outputs))
    output_grad[np.arange(n), columns] = scale
    return output_grad


def _scores(estimator, network, images, target):
    """The network's outputs on ``images`` and the gradient of ``target``'s score with
    respect to them."""
    outputs = network.outputs(images)
    return outputs, _score_gradient(estimator, outputs, target)


def input_gradient(estimator, X, target=None) -> np.ndarray:
    """The gradient of the explained score with respect to every input value.

    Parameters
    ----------
    estimator : fitted CNNClassifier or CNNRegressor
    X : array-like of images, in any layout ``fit`` accepts
    target : class label, output index, array of one per image, or None
        What to explain: a classifier's class (default: the predicted one), a
        regressor's output (default: the only one).

    Returns
    -------
    ndarray of shape (n_samples, C, H, W)
        Signed, in the model's dtype.
    """
    network, images = fitted_images(estimator, X)
    _, output_grad = _scores(estimator, network, images, target)
    return network.gradient(images, output_grad)[1]


def saliency(estimator, X, target=None, *, times_input: bool = False,
             smooth: int = 0, noise: float = 0.15, random_state=None) -> np.ndarray:
    """Saliency map: how strongly each pixel moves the score (Simonyan et al. 2014).

    Parameters
    ----------
    estimator : fitted CNNClassifier or CNNRegressor
    X : array-like of images, in any layout ``fit`` accepts
    target : class label, output index, array of one per image, or None
        See :func:`input_gradient`.
    times_input : bool, default=False
        Multiply the gradient by the input and sum over the channels ("input x
        gradient", Shrikumar et al. 2016): each pixel's share of the score to first
        order, so pixels near zero (a dark or flat background) get little of the map
        even where the gradient is large.
    smooth : int, default=0
        SmoothGrad (Smilkov et al. 2017): average the gradient (or input x
        gradient) over this many copies of each image with Gaussian noise added,
        which removes the gradient's pixel-to-pixel jitter. 0: the plain gradient.
    noise : float, default=0.15
        SmoothGrad's noise standard deviation as a fraction of each image's value
        range (max - min); the paper finds 0.1-0.2 best.
    random_state : int, RandomState instance or None, default=None
        Seeds SmoothGrad's noise.

    Returns
    -------
    ndarray of shape (n_samples, H, W)
        ``max over channels of |d score / d pixel|`` (``|sum over channels of
        pixel * d score / d pixel|`` with ``times_input``), averaged over the noisy
        copies before the absolute value with ``smooth``; non-negative.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.inspection import saliency
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=2, random_state=0).fit(X[:300], y[:300])
    >>> saliency(clf, X[:4]).shape
    (4, 8, 8)
    >>> saliency(clf, X[:4], times_input=True, smooth=10, random_state=0).shape
    (4, 8, 8)
    """
    if not isinstance(times_input, (bool, np.bool_)):
        raise TypeError(f"times_input must be True or False, got {times_input!r}")
    if not isinstance(smooth, Integral) or isinstance(smooth, bool) or smooth < 0:
        raise ValueError(f"smooth must be a non-negative int (the number of noisy "
                         f"copies; 0 for none), got {smooth!r}")
    if isinstance(noise, bool) or not isinstance(noise, Real) or not 0 < noise < np.inf:
        raise ValueError(f"noise must be a positive float (a fraction of each image's "
                         f"value range), got {noise!r}")
    network, images = fitted_images(estimator, X)
    _, output_grad = _scores(estimator, network, images, target)

    rng = check_random_state(random_state)

    def maps_of(x, grads):                                             # (m, C, H, W)
        def attribution(z):
            gradient = network.gradient(z, grads)[1]
            return gradient * z if times_input else gradient

        if smooth:
            # the score stays the clean image's target: noise must not change what is
            # explained
            scale = np.ptp(x, axis=(1, 2, 3), keepdims=True) * noise    # (m, 1, 1, 1)
            maps = sum(attribution(x + (rng.standard_normal(x.shape)
                                        * scale).astype(x.dtype))
                       for _ in range(smooth)) / smooth
        else:
            maps = attribution(x)
        return np.abs(maps.sum(axis=1)) if times_input else np.abs(maps).max(axis=1)

    if not isinstance(images, ImageStream):
        return maps_of(images, output_grad)
    return np.concatenate([maps_of(images[begin:begin + STREAM_CHUNK],   # read by chunks
                                   output_grad[begin:begin + STREAM_CHUNK])
                           for begin in range(0, len(images), STREAM_CHUNK)])


def default_cam_layer(specs) -> int:
    """Grad-CAM's default layer: the last top-level convolution (or residual block),
    with the elementwise layers right after it (BatchNorm, activation), so the map is
    the convolution's activated output, before any pooling."""
    convolutions = [i for i, spec in enumerate(specs) if isinstance(spec, (Conv2d, Residual))]
    if not convolutions:
        raise ValueError("grad_cam needs a network with a convolution; this one has none")
    index = convolutions[-1]
    while index + 1 < len(specs) and type(specs[index + 1]).__name__ in _ELEMENTWISE:
        index += 1
    return index


def _cam_layer(network, layer) -> int:
    """The top-level layer index Grad-CAM reads, checked: its output must be a map."""
    network.require_specs("grad_cam")
    if layer is None:
        return default_cam_layer(network.specs)
    if isinstance(layer, str) and layer.isdigit():
        layer = int(layer)
    maps = [i for i in range(len(network.specs)) if len(network.shape_after(i + 1)) == 3]
    if not isinstance(layer, Integral) or isinstance(layer, bool) or layer not in maps:
        raise ValueError(f"layer must be the index of a top-level layer whose output is a "
                         f"(C, H, W) map: one of {maps}; got {layer!r}")
    return int(layer)


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``maps`` (n, h, w) to (n, H, W), pixel centres aligned
    (``align_corners=False``), edges held."""
    n, h, w = maps.shape
    height, width = size
    rows = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    cols = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    src_y = np.broadcast_to(rows[None, :, None], (n, height, width))
    src_x = np.broadcast_to(cols[None, None, :], (n, height, width))
    return _bilinear(maps[:, None].astype(np.float64), src_y, src_x)[:, 0]


def grad_cam(estimator, X, target=None, layer=None) -> np.ndarray:
    """Grad-CAM map: where the evidence for the score lies (Selvaraju et al. 2017).

    Parameters
    ----------
    estimator : fitted CNNClassifier or CNNRegressor
    X : array-like of images, in any layout ``fit`` accepts
    target : class label, output index, array of one per image, or None
        See :func:`input_gradient`.
    layer : int, default=None
        The top-level layer whose output maps are weighted (``summary()`` numbers
        them); by default the last convolution's activated output.

    Returns
    -------
    ndarray of shape (n_samples, H, W)
        ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of
        ``d score / d A_k``, upsampled from the layer's resolution; non-negative.
    """
    network, images = fitted_images(estimator, X)
    index = _cam_layer(network, layer)
    _, output_grad = _scores(estimator, network, images, target)
    activations, gradients = network.gradient(images, output_grad, index)
    alpha = gradients.mean(axis=(2, 3), keepdims=True)                 # (n, K, 1, 1)
    cam = np.maximum((alpha * activations).sum(axis=1), 0.0)           # (n, h, w)
    return upsample(cam, images.shape[2:])


def _patches(size: tuple[int, int], window: int, stride: int) -> np.ndarray:
    """Boolean masks (P, H, W) of the square patches of ``window`` pixels every
    ``stride`` pixels, the last row and column of patches flush with the edge."""
    def starts(length):
        last = max(length - window, 0)
        return np.unique(np.r_[np.arange(0, last + 1, stride), last])
    top, left = np.meshgrid(starts(size[0]), starts(size[1]), indexing="ij")
    rows, cols = np.arange(size[0]), np.arange(size[1])
    inside_rows = (rows >= top.reshape(-1, 1)) & (rows < top.reshape(-1, 1) + window)
    inside_cols = (cols >= left.reshape(-1, 1)) & (cols < left.reshape(-1, 1) + window)
    return inside_rows[:, :, None] & inside_cols[:, None, :]


def occlusion(estimator, X, target=None, window: int | None = None,
              stride: int | None = None) -> np.ndarray:
    """Occlusion map: the score lost when a patch is greyed out (Zeiler & Fergus 2014).

    Parameters
    ----------
    estimator : fitted CNNClassifier or CNNRegressor
    X : array-like of images, in any layout ``fit`` accepts
    target : class label, output index, array of one per image, or None
        See :func:`input_gradient`; the same score for every occluded copy.
    window : int, default=None
        Side of the square patch; by default a seventh of the shorter image side
        (4 pixels on 28x28), at least 1.
    stride : int, default=None
        Step between patches, at most ``window`` (so that every pixel is covered); by
        default half the window, at least 1.

    Returns
    -------
    ndarray of shape (n_samples, H, W)
        For each pixel, the mean over the patches that cover it of ``score(image) -
        score(image with the patch set to the image's channel means)``. Positive
        where hiding the pixels lowers the score.
    """
    network, images = fitted_images(estimator, X)
    n, c, h, w = images.shape
    window = max(1, round(min(h, w) / 7)) if window is None else window
    stride = max(1, window // 2) if stride is None else stride
    for name, value in (("window", window), ("stride", stride)):
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if window > min(h, w):
        raise ValueError(f"window={window} is larger than the images ({h}x{w})")
    if stride > window:
        raise ValueError(f"stride={stride} is larger than window={window}: the pixels "
                         "between two patches would be covered by none, and have no "
                         "score drop; use a stride of at most the window")
    outputs, output_grad = _scores(estimator, network, images, target)
    base = (outputs * output_grad).sum(axis=1)                             # (n,)
    masks = _patches((h, w), int(window), int(stride))                 # (P, H, W)
    per_pass = max(1, OCCLUSION_BATCH // len(masks))
    drops = []
    for begin in range(0, n, per_pass):                                # chunks of images
        chunk = images[begin:begin + per_pass]                         # (m, C, H, W)
        grey = chunk.mean(axis=(2, 3))[:, None, :, None, None]         # (m, 1, C, 1, 1)
        occluded = np.where(masks[None, :, None], grey, chunk[:, None])  # (m, P, C, H, W)
        scores = network.outputs(occluded.reshape(-1, c, h, w))
        scores = (scores.reshape(len(chunk), len(masks), -1)
                  * output_grad[begin:begin + per_pass, None]).sum(axis=2)  # (m, P)
        drops.append(base[begin:begin + per_pass, None] - scores)
    flat_masks = masks.reshape(len(masks), -1).astype(np.float64)      # (P, H*W)
    coverage = flat_masks.sum(axis=0)                                  # (H*W,)
    return (np.concatenate(drops) @ flat_masks / coverage).reshape(n, h, w)

