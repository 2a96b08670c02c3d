"""Image shape handling: every accepted layout becomes float32 (N, C, H, W)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.utils.validation import assert_all_finite, check_array

CHANNEL_COUNTS = (1, 3, 4)  # grayscale, RGB, RGBA: what a channels-last axis looks like
#: flat rows of 3 (or 4) x s x s values with s at least this are taken for flattened
#: colour images, whose layout is not guessed
COLOUR_MIN_SIDE = 8
#: flat rows of fewer values than this (an 8 x 8 image, the smallest the package's
#: networks are made for) that are not a square are plain features, read as one
#: 1 x F row (tabular data, as scikit-learn's own checks pass); longer non-square
#: rows are images of a shape nobody said, and are refused
FEATURE_ROW_MAX = 63


def normalize_input_shape(input_shape) -> tuple[int, int, int] | None:
    """``None``, ``(H, W)`` or ``(C, H, W)`` -> ``None`` or ``(C, H, W)``."""
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ValueError(f"input_shape must be (C, H, W) or (H, W) of positive ints, "
                         f"got {input_shape!r}")
    return tuple(int(n) for n in shape)


def to_images(X, *, input_shape=None, channels: str = "auto", dtype=None,
              keep_pixels: bool = False) -> np.ndarray:
    """Validate ``X`` and return it as a C-contiguous float array (N, C, H, W).

    float64 input stays float64 (as in MLPClassifier, the network then computes in
    float64); everything else (uint8 images, ints, float32) becomes float32. A given
    ``dtype`` (that of a fitted network) overrides this. ``uint8`` images are scaled
    by 1/255 to [0, 1], as torchvision's ``ToTensor`` does, so raw 0-255 pixels (from
    image files, the IDX and CIFAR readers) train as well as divided ones; other
    types are used as given.

    Accepted layouts:

    - ``(n, H, W)``: one channel;
    - ``(n, C, H, W)`` or ``(n, H, W, C)``: with ``channels="auto"`` the last axis is
      taken as channels when it has 1, 3 or 4 entries and the second axis has not;
      ``channels="first"`` / ``"last"`` decide explicitly;
    - flat ``(n, F)``: reshaped to ``input_shape`` when given, else a square ``F``
      is one ``sqrt(F) x sqrt(F)`` channel, an ``F`` of 3 or 4 times a square of
      side 8 or more (flattened colour images, 3,072 for CIFAR) is refused with the
      ``input_shape`` to pass, a non-square ``F`` below 64 (tabular features) is a
      ``1 x F`` row, and any other ``F`` is refused with the ``input_shape`` to pass
      (a long flat row is an image of a shape nobody said).

    Refused with a ValueError (TypeError for sparse matrices): NaN, infinity, values
    whose square overflows the float type the network computes in (above 1.8e19 in
    float32: the loss, Adam's moments and BatchNorm's variance would become inf and
    NaN), strings, complex numbers, images of different shapes, images without pixels.

    The caller's array is never modified: the result is a new array, or the input
    itself when it is already a float (N, C, H, W) contiguous array. With
    ``keep_pixels``, ``uint8`` input comes back as a ``uint8`` (N, C, H, W) view of
    itself, for a prediction that converts it pass by pass rather than copying a
    large (memory-mapped) array whole.
    """
    try:  # first without conversion, to refuse strings that float() would parse
        X = check_array(as_numpy(X, "X"), allow_nd=True, dtype=None,
                        ensure_all_finite=False, input_name="X")
    except ValueError as exc:
        if "inhomogeneous" not in str(exc):
            raise
        raise ValueError("X holds images of different shapes; every image must have the "
                         "same (C, H, W) shape: resize or pad them first") from exc
    if X.dtype.kind in "SU" or (X.dtype == object and _holds_strings(X)):
        raise ValueError(f"X holds strings (dtype {X.dtype}), not pixel values; convert "
                         "them to numbers explicitly, e.g. X.astype(np.float32)")
    pixels = X.dtype == np.uint8
    if pixels and keep_pixels:  # always finite and small: nothing to check or convert
        return _layout(X, input_shape, channels)
    extremes = None
    if X.dtype in (np.float32, np.float64):  # checked already, but for finiteness
        # NaN and inf show in the smallest or largest value, which the magnitude
        # check needs anyway: two passes over X instead of three
        extremes = _extremes(X)
        if not np.isfinite(extremes).all():
            assert_all_finite(X, input_name="X")  # scikit-learn's own message
    else:  # one more pass of scikit-learn's checks, converting
        X = check_array(X, allow_nd=True, dtype=[np.float32, np.float64],
                        ensure_all_finite=True, input_name="X")
    dtype = np.dtype(X.dtype if dtype is None else dtype)
    if pixels:  # 0-255 pixel values -> [0, 1], as torchvision's ToTensor
        X = X / np.float32(255)
    _check_magnitude(X, dtype, extremes)
    return np.ascontiguousarray(_layout(X, input_shape, channels), dtype=dtype)


def _extremes(X: np.ndarray) -> tuple[float, float]:
    """``(X.min(), X.max())``, NaN when X holds a NaN; (0, 0) when X is empty."""
    return (float(X.min()), float(X.max())) if X.size else (0.0, 0.0)


def _layout(X: np.ndarray, input_shape, channels: str) -> np.ndarray:
    """X (2-D to 4-D) as (N, C, H, W), a view where it can be; checked against
    ``input_shape``."""
    if X.ndim == 2:
        images = _unflatten(X, normalize_input_shape(input_shape))
    elif X.ndim == 3:
        images = X[:, None, :, :]
    elif X.ndim == 4:
        images = X.transpose(0, 3, 1, 2) if _channels_last(X.shape, channels) else X
    else:
        raise ValueError(
            f"X must have 2 to 4 dimensions: (n, F), (n, H, W), (n, C, H, W) or "
            f"(n, H, W, C); got {X.ndim} dimensions with shape {X.shape}"
        )
    if 0 in images.shape[1:]:
        raise ValueError(f"X holds empty images of shape {images.shape[1:]} (C, H, W); "
                         "an image needs at least one pixel")
    expected = normalize_input_shape(input_shape)
    if expected is not None and images.shape[1:] != expected:
        raise ValueError(f"X holds images of shape {images.shape[1:]} but input_shape "
                         f"is {expected}")
    return images


def as_numpy(value, name: str):
    """An array of another array-API namespace (a torch tensor, array_api_strict...)
    as a NumPy array: the estimators compute in NumPy (the torch backend moves each
    batch to its device itself) and return NumPy arrays, also under scikit-learn's
    ``array_api_dispatch``. Anything else is returned as it is."""
    foreign = hasattr(value, "__array_namespace__") or hasattr(value, "__dlpack__")
    if isinstance(value, np.ndarray) or not foreign:
        return value
    try:
        return np.asarray(value)
    except (TypeError, RuntimeError, ValueError) as exc:
        try:
            return np.from_dlpack(value)
        except (TypeError, RuntimeError, ValueError, BufferError):
            raise TypeError(f"{name} could not be read as a NumPy array ({exc}); pass a "
                            f"NumPy array (from a torch tensor: {name}.detach().cpu()"
                            ".numpy())") from None


def _holds_strings(X: np.ndarray) -> bool:
    """Whether an object array holds any str or bytes (which float() would parse)."""
    is_text = np.frompyfunc(lambda v: isinstance(v, (str, bytes)), 1, 1)
    return bool(is_text(X).any())


def _check_magnitude(X: np.ndarray, dtype: np.dtype,
                     extremes: tuple[float, float] | None = None) -> None:
    """Refuse values whose square overflows ``dtype``: finite, but training (and
    often prediction) on them would only produce inf and NaN. ``extremes``: X's
    smallest and largest values, when known."""
    limit = math.sqrt(np.finfo(dtype).max)
    low, high = _extremes(X) if extremes is None else extremes
    largest = max(high, -low)
    if largest > limit:
        raise ValueError(
            f"X holds values up to {largest:.3g} in magnitude, too large for the network, "
            f"which computes in {dtype}: values above {limit:.3g} overflow it. Scale the "
            "images first (to [0, 1], say)"
        )


def _channels_last(shape: tuple[int, ...], channels: str) -> bool:
    if channels == "last":
        return True
    if channels == "first":
        return False
    return shape[3] in CHANNEL_COUNTS and shape[1] not in CHANNEL_COUNTS


def _unflatten(X: np.ndarray, input_shape) -> np.ndarray:
    n, features = X.shape
    if input_shape is not None:
        if math.prod(input_shape) != features:
            raise ValueError(
                f"X has {features} features per sample but input_shape {input_shape} "
                f"needs {math.prod(input_shape)}"
            )
        return X.reshape(n, *input_shape)
    side = math.isqrt(features)
    if side * side == features:
        return X.reshape(n, 1, side, side)
    for channels in (3, 4):  # RGB or RGBA images flattened: refuse to guess the layout
        side = math.isqrt(features // channels)
        if side >= COLOUR_MIN_SIDE and channels * side * side == features:
            raise ValueError(
                f"X has {features} features per sample, which is not a square image but "
                f"is {channels} x {side} x {side}: flattened {channels}-channel images? Pass "
                f"input_shape=({channels}, {side}, {side}) (channels first; for "
                f"channels-last rows, X.reshape(-1, {side}, {side}, {channels})); a row of "
                "plain features can be read as one 1 x F image with input_shape=(1, 1, F)")
    if features > FEATURE_ROW_MAX:
        raise ValueError(
            f"X has {features} features per sample, which is not a square image, and "
            "without input_shape its layout is unknown. Pass input_shape=(C, H, W), the "
            f"shape of one image channels first with C * H * W = {features} (e.g. "
            "CNNClassifier(input_shape=(C, H, W))), or X as (n, H, W) / (n, C, H, W) "
            "images; rows of plain features are read as one row image with "
            f"input_shape=(1, 1, {features})")
    return X.reshape(n, 1, 1, features)


def warn_if_unscaled(images: np.ndarray) -> None:
    """Warn when images hold whole numbers up to 255, 0-255 pixel values that were not
    given as uint8 (uint8 images are scaled to [0, 1] automatically; other types are
    used as given)."""
    if images.size == 0:
        return
    low, high = float(images.min()), float(images.max())
    sample = images.flat[:1000]
    if low >= 0 and 25 < high <= 255 and np.array_equal(sample, np.round(sample)):
        warnings.warn(
            f"X holds whole numbers from {low:g} to {high:g}, which look like 0-255 pixel "
            "values. Only uint8 images are scaled to [0, 1] automatically (as "
            "torchvision's ToTensor); divide by 255 or pass uint8 images to train on the "
            "usual scale.", UserWarning, stacklevel=4)
