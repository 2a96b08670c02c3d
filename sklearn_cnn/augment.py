"""Data augmentation: random changes to a training batch, vectorized in NumPy.

Each function takes a batch ``x`` of shape (N, C, H, W) and a
``numpy.random.Generator`` and returns a new batch of the same shape, every image
changed independently; ``x`` itself is never modified. Both backends call the same
functions, seeded from ``random_state``, at training time only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

Augmentation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def random_flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror a random half of the images left to right."""
    flip = rng.random(len(x)) < 0.5
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out


def random_shift(x: np.ndarray, rng: np.random.Generator, fraction: float = 0.125
                 ) -> np.ndarray:
    """Translate each image by up to ``fraction`` of its size (at least 1 pixel) in
    each direction: zero-pad, then crop at a random offset per image."""
    n, _, h, w = x.shape
    pad_h, pad_w = max(1, round(h * fraction)), max(1, round(w * fraction))
    padded = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    top = rng.integers(0, 2 * pad_h + 1, n)
    left = rng.integers(0, 2 * pad_w + 1, n)
    rows = (top[:, None] + np.arange(h))[:, None, :, None]        # (N, 1, H, 1)
    cols = (left[:, None] + np.arange(w))[:, None, None, :]       # (N, 1, 1, W)
    samples = np.arange(n)[:, None, None, None]
    channels = np.arange(x.shape[1])[None, :, None, None]
    return padded[samples, channels, rows, cols]


def random_small_shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by up to 1/14 of its size (2 pixels on 28 px): a change
    that keeps digits, letters and clothes what they are (flips do not: a mirrored 2
    or "b" is another symbol).

    Where 1/14 of a side is a pixel or more, the shift is in whole pixels, so the
    image stays sharp; on smaller images (8 px: at most 0.57 px) a whole pixel would
    move the image by an eighth, so the shift is in fractions of a pixel (bilinear).
    """
    if not moves_by_fractions(x.shape[2:]):
        return random_shift(x, rng, fraction=SMALL_SHIFT)
    return random_affine(x, rng, degrees=0.0, shear=0.0, scale=(1.0, 1.0),
                         translate=SMALL_SHIFT)


#: how far ``random_small_shift`` moves an image, as a fraction of its size
SMALL_SHIFT = 1 / 14


def moves_by_fractions(size: tuple[int, ...]) -> bool:
    """Whether ``random_small_shift`` moves images of ``size`` (H, W) by fractions of
    a pixel: under 14 pixels on the shorter side, where its largest shift is less
    than a pixel."""
    return min(size) * SMALL_SHIFT < 1


#: "auto" shifts only images at least this many pixels on each side: on a 1 x F row of
#: features (flat tabular input) or a 4 x 4 thumbnail, one pixel is too much to move
AUTO_MIN_SIDE = 8


def auto(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``random_small_shift`` on images of at least ``AUTO_MIN_SIDE`` pixels a side;
    smaller images are left as they are."""
    if min(x.shape[2:]) < AUTO_MIN_SIDE:
        return x
    return random_small_shift(x, rng)


def _bilinear(x: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    """Sample every image of ``x`` (N, C, H, W) at the fractional source coordinates
    ``src_y``, ``src_x`` (N, H, W) of each output pixel: bilinear interpolation, zeros
    outside the image."""
    n, c, h, w = x.shape
    y0, x0 = np.floor(src_y).astype(int), np.floor(src_x).astype(int)
    wy, wx = (src_y - y0)[:, None], (src_x - x0)[:, None]         # (N, 1, H, W)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 2)))          # zeros outside
    samples = np.arange(n)[:, None, None, None]
    channels = np.arange(c)[None, :, None, None]

    def at(dy, dx):
        rows = np.clip(y0 + dy + 1, 0, h + 2)[:, None]
        cols = np.clip(x0 + dx + 1, 0, w + 2)[:, None]
        return padded[samples, channels, rows, cols]

    top = at(0, 0) * (1 - wx) + at(0, 1) * wx
    bottom = at(1, 0) * (1 - wx) + at(1, 1) * wx
    return (top * (1 - wy) + bottom * wy).astype(x.dtype)


def random_affine(x: np.ndarray, rng: np.random.Generator, degrees: float = 10.0,
                  shear: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                  translate: float = 1 / 14) -> np.ndarray:
    """Rotate by up to ``degrees``, shear by up to ``shear`` degrees, zoom by a factor
    in ``scale`` and translate by up to ``translate`` of the image's size (sub-pixel),
    each drawn per image, about the image's centre (bilinear, zeros outside).

    The changes a hand or a camera makes to a shape: slant, size and position, with
    nothing mirrored.
    """
    n, _, h, w = x.shape
    return affine(x, rng.uniform(-degrees, degrees, n), rng.uniform(-shear, shear, n),
                  rng.uniform(*scale, n), rng.uniform(-translate, translate, n) * h,
                  rng.uniform(-translate, translate, n) * w)


def affine(x: np.ndarray, degrees: np.ndarray, shear: np.ndarray, zoom: np.ndarray,
           shift_y: np.ndarray, shift_x: np.ndarray) -> np.ndarray:
    """Transform each image of ``x`` (N, C, H, W) about its centre: rotate by
    ``degrees[i]`` (clockwise on screen, rows running down), shear by ``shear[i]``
    degrees, zoom by ``zoom[i]`` and move by ``shift_y[i]``, ``shift_x[i]`` pixels;
    bilinear interpolation, zeros outside."""
    _, _, h, w = x.shape
    angle = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    slant = np.tan(np.deg2rad(np.asarray(shear, dtype=np.float64)))
    zoom = np.asarray(zoom, dtype=np.float64)
    shift_y = np.asarray(shift_y, dtype=np.float64)
    shift_x = np.asarray(shift_x, dtype=np.float64)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    # where each output pixel comes from: the inverse transform of its coordinates
    yy = (yy[None] - shift_y[:, None, None]) / zoom[:, None, None]     # (N, H, W)
    xx = (xx[None] - shift_x[:, None, None]) / zoom[:, None, None]
    xx = xx - slant[:, None, None] * yy
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    return _bilinear(x, cos * yy - sin * xx + cy, sin * yy + cos * xx + cx)


def rotate(x: np.ndarray, degrees) -> np.ndarray:
    """Rotate each image of ``x`` (N, C, H, W) by ``degrees`` (one angle, or one per
    image) clockwise about its centre (bilinear interpolation, zeros outside)."""
    n = len(x)
    degrees = np.broadcast_to(np.asarray(degrees, dtype=np.float64), (n,))
    return affine(x, degrees, np.zeros(n), np.ones(n), np.zeros(n), np.zeros(n))


def random_rotation(x: np.ndarray, rng: np.random.Generator, degrees: float = 10.0
                    ) -> np.ndarray:
    """Rotate each image by a random angle in [-degrees, degrees] about its centre
    (bilinear interpolation, zeros outside)."""
    return random_affine(x, rng, degrees=degrees, shear=0.0, scale=(1.0, 1.0),
                         translate=0.0)


def random_erasing(x: np.ndarray, rng: np.random.Generator, p: float = 0.5,
                   area: tuple[float, float] = (0.02, 0.33),
                   aspect: tuple[float, float] = (0.3, 3.3)) -> np.ndarray:
    """Set a random rectangle of a random ``p`` of the images to 0 (Zhong et al.,
    "Random Erasing Data Augmentation", 2020; torchvision's ``RandomErasing``
    defaults): its area a uniform fraction ``area`` of the image, its height/width
    ratio log-uniform in ``aspect``, its place uniform; the network must then
    recognise an object from a part of it. Where a rectangle would not fit, its
    sides are cut to the image's."""
    n, _, h, w = x.shape
    erase = rng.random(n) < p                                          # (N,)
    target = rng.uniform(*area, n) * h * w
    ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1]), n))
    heights = np.clip(np.round(np.sqrt(target * ratio)), 1, h).astype(int)
    widths = np.clip(np.round(np.sqrt(target / ratio)), 1, w).astype(int)
    top = (rng.random(n) * (h - heights + 1)).astype(int)              # in [0, h - height]
    left = (rng.random(n) * (w - widths + 1)).astype(int)
    rows, cols = np.arange(h), np.arange(w)
    inside = (((rows >= top[:, None]) & (rows < (top + heights)[:, None]))[:, :, None]
              & ((cols >= left[:, None]) & (cols < (left + widths)[:, None]))[:, None, :])
    return np.where((inside & erase[:, None, None])[:, None], 0, x).astype(x.dtype, copy=False)


def compose(*steps: Augmentation) -> Augmentation:
    def augment(x, rng):
        for step in steps:
            x = step(x, rng)
        return x
    return augment


#: the names ``CNNClassifier(augment=...)`` accepts
AUGMENTATIONS: dict[str, Augmentation] = {
    "auto": auto,
    "flip": random_flip,
    "shift": random_shift,
    "small_shift": random_small_shift,
    "rotate": random_rotation,
    "affine": random_affine,
    "erase": random_erasing,
    "standard": compose(random_shift, random_flip),
}


def resolve(augment) -> Augmentation | None:
    """``None``, a name of ``AUGMENTATIONS``, a callable ``f(batch) -> batch``, or a
    list or tuple of those, applied in turn (``["shift", "flip", "erase"]``)."""
    if augment is None:
        return None
    if isinstance(augment, str):
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be None, a callable, one of "
                             f"{sorted(AUGMENTATIONS)} or a list of them; got {augment!r}")
        return AUGMENTATIONS[augment]
    if isinstance(augment, (list, tuple)):
        if not augment:
            raise ValueError("augment must not be an empty list; pass None for no "
                             "augmentation")
        steps = [resolve(step) for step in augment]
        if any(step is None for step in steps):
            raise ValueError(f"augment's list holds None; list only names and callables, "
                             f"got {augment!r}")
        return compose(*steps)
    if callable(augment):
        return _checked(augment)
    raise TypeError(f"augment must be None, a string, a callable or a list of them; got "
                    f"{type(augment).__name__}")


#: the moves of ``test_time_augment="shift"``: half a pixel (rows, columns) down,
#: up, right and left
HALF_PIXEL_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))


def half_pixel_move(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``x`` (N, C, H, W) moved half a pixel down (``rows=1``), up (``-1``), right
    (``cols=1``) or left (``-1``): each pixel the mean of itself and its neighbour on
    the side the image moves from, zero beyond the border. That is what bilinear
    interpolation gives for a shift of half a pixel (``affine`` with ``shift_y=0.5``),
    and what an ONNX ``AveragePool`` of a 2x1 window padded on one side computes.
    ``uint8`` pixels come back as float32 in [0, 1], scaled by 1/255 as the
    estimators scale them (half-way values need a float)."""
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255)
    def span(step: int) -> tuple[slice, slice]:  # (to, from) along one axis
        return {1: (slice(1, None), slice(None, -1)), -1: (slice(None, -1), slice(1, None)),
                0: (slice(None), slice(None))}[step]

    (rows_to, rows_from), (cols_to, cols_from) = span(rows), span(cols)
    neighbour = np.zeros_like(x)
    neighbour[..., rows_to, cols_to] = x[..., rows_from, cols_from]
    return (x + neighbour) * x.dtype.type(0.5)


def flip_left_right(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C, H, W) mirrored left to right (a contiguous copy)."""
    return np.ascontiguousarray(x[..., ::-1])


#: what ``test_time_augment`` accepts
TEST_TIME_AUGMENTATIONS = ("auto", "flip", "shift")


def resolve_test_time(option: str | None, image_size: tuple[int, ...]) -> str | None:
    """What ``test_time_augment=option`` means for images of ``image_size`` (H, W):
    ``"flip"``, ``"shift"`` or None; ``"auto"`` is ``"shift"`` on images that
    ``augment="auto"`` moves by fractions of a pixel (8 to 13 pixels on the shorter
    side, like the 8x8 digits) and None on others."""
    if option == "auto":
        small = AUTO_MIN_SIDE <= min(image_size) and moves_by_fractions(image_size)
        return "shift" if small else None
    return option


def prediction_views(option: str | None, image_size: tuple[int, ...]
                     ) -> tuple[Callable[[np.ndarray], np.ndarray], ...]:
    """The changed copies of an image whose predictions ``test_time_augment``
    averages with the image's own: for ``"flip"`` its mirror; for ``"shift"`` the
    image moved half a pixel down, up, right and left (:func:`half_pixel_move`)."""
    option = resolve_test_time(option, image_size)
    if option == "flip":
        return (flip_left_right,)
    if option == "shift":
        return tuple(partial(half_pixel_move, rows=r, cols=c) for r, c in HALF_PIXEL_MOVES)
    return ()


def _checked(function: Callable[[np.ndarray], np.ndarray]) -> Augmentation:
    def augment(x, rng):
        out = np.asarray(function(x.copy()))
        if out.shape != x.shape:
            raise ValueError(f"the augment callable must return a batch of shape "
                             f"{x.shape}; it returned {out.shape}")
        return out.astype(x.dtype, copy=False)
    return augment
