"""Image shape handling: every accepted layout becomes float32 (N, C, H, W)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_array

CHANNEL_COUNTS = (1, 3, 4)  # grayscale, RGB, RGBA: what a channels-last axis looks like


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


def to_images(X, *, input_shape=None, channels: str = "auto") -> np.ndarray:
    """Validate ``X`` and return it as a C-contiguous float array (N, C, H, W).

    float64 input stays float64 (as in MLPClassifier, the network then computes in
    float64); everything else (uint8 images, ints, float32) becomes float32.

    Accepted layouts:

    - ``(n, H, W)``: one channel;
    - ``(n, C, H, W)`` or ``(n, H, W, C)``: with ``channels="auto"`` the last axis is
      taken as channels when it has 1, 3 or 4 entries and the second axis has not;
      ``channels="first"`` / ``"last"`` decide explicitly;
    - flat ``(n, F)``: reshaped to ``input_shape`` when given, else a square ``F``
      is one ``sqrt(F) x sqrt(F)`` channel and any other ``F`` a ``1 x F`` row.

    The caller's array is never modified: the result is a new array, or the input
    itself when it is already a float (N, C, H, W) contiguous array.
    """
    X = check_array(X, allow_nd=True, dtype=[np.float32, np.float64], ensure_all_finite=True,
                    input_name="X")
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
    expected = normalize_input_shape(input_shape)
    if expected is not None and images.shape[1:] != expected:
        raise ValueError(f"X holds images of shape {images.shape[1:]} but input_shape "
                         f"is {expected}")
    return np.ascontiguousarray(images)


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
    return X.reshape(n, 1, 1, features)
