"""Image transformers: files to arrays, per-channel scaling, resizing, and bridges.

Each one is a scikit-learn transformer (cloneable, picklable, grid-searchable) that
takes and gives images, so images flow through a ``Pipeline`` as far as the CNN:

- :class:`ImageLoader`: file paths -> float32 images ``(n, C, H, W)`` in [0, 1],
  read with Pillow (``pip install 'sklearn-cnn[images]'``);
- :class:`ChannelStandardizer`: per-channel mean and standard deviation fitted on the
  training images, the image counterpart of ``StandardScaler``;
- :class:`Resize`: images of any size -> images of one size (bilinear);
- :class:`ImagesToFlat` and :class:`FlatToImages`: the bridge to and from the 2-D
  ``(n, features)`` world of scikit-learn's other transformers.

Every transformer that gives images accepts them in any layout ``CNNClassifier.fit``
does (``(n, H, W)``, ``(n, C, H, W)``, ``(n, H, W, C)``, flat with ``input_shape``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ._input import to_images
from .augment import _bilinear

#: file endings read as images (by Pillow); anything else in a folder is skipped
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: Pillow modes that hold no colour
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "P;L")
#: one-channel Pillow modes of more than 8 bits a value, and how their values map to
#: [0, 1]: integers by their bit depth (Pillow's conversions to 8-bit modes would clip
#: them), floats as they are
WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535,
              "I": 2**31 - 1, "F": 1}


class ImageSizeError(ValueError):
    """Image files of another size than the first one, where one size is needed.

    ``reason`` says which file and which sizes; the message adds how to fix it in
    :class:`ImageLoader`'s terms, and callers with other parameters (``size=`` of
    :func:`~sklearn_cnn.datasets.load_image_folder`, the command line's ``--size``)
    say it in theirs.
    """

    def __init__(self, reason: str, fix: str = "pass ImageLoader(size=(H, W))"):
        super().__init__(f"{reason}; {fix}")
        self.reason = reason


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError("reading image files needs Pillow: pip install "
                          "'sklearn-cnn[images]' (in a clone of the repository: "
                          "pip install -e '.[images]')") from None
    return Image, ImageOps


def _size_pair(size, name: str = "size") -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (size, size) if isinstance(size, Integral) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool)
                                 and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


def open_image(path: str | os.PathLike, *, header_only: bool = False):
    """The image at ``path`` as a Pillow image, turned upright as its EXIF orientation
    says (a GIF's first frame); a ValueError naming the file if it cannot be read.
    ``header_only``: read no pixels (the mode is known, the size not yet turned)."""
    Image, ImageOps = _pillow()
    try:
        with Image.open(path) as image:
            if header_only:
                return image
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ValueError(f"image file {str(os.fspath(path))!r} does not exist") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"image file {str(os.fspath(path))!r} cannot be read as an image "
                         f"({type(exc).__name__}: {exc})") from None


def _fit_to(image, size: tuple[int, int] | None, resize: str):
    """``image`` brought to ``size`` (H, W): stretched (``"stretch"``), scaled to cover
    and centre-cropped (``"crop"``), or scaled to fit and centre-padded with black
    (``"pad"``)."""
    Image, ImageOps = _pillow()
    if size is None or image.size == (size[1], size[0]):
        return image
    target = (size[1], size[0])  # Pillow speaks (width, height)
    if resize == "stretch":
        return image.resize(target, Image.Resampling.BILINEAR)
    if resize == "crop":
        return ImageOps.fit(image, target, Image.Resampling.BILINEAR)
    return ImageOps.pad(image, target, Image.Resampling.BILINEAR, color=0)


def read_image(path: str | os.PathLike, *, mode: str = "RGB",
               size: tuple[int, int] | None = None, resize: str = "stretch"
               ) -> np.ndarray:
    """One image file as a float32 array ``(C, H, W)`` in [0, 1].

    ``mode``: ``"L"`` (1 channel), ``"RGB"`` (3) or ``"RGBA"`` (4); a transparent
    image read as ``"RGB"`` is composed onto black. ``size``: ``(H, W)``, reached as
    ``fit`` says (see :class:`ImageLoader`); None keeps the file's size.

    Every mode Pillow opens comes in with its true range mapped to [0, 1]: 8-bit
    modes (``"1"``, ``"L"``, ``"P"``, ``"RGB"``, ``"CMYK"``, ``"YCbCr"``...) by 255,
    16-bit ones (``"I;16"``, a 16-bit PNG) by 65,535, 32-bit integers (``"I"``) by
    2**31 - 1, and 32-bit floats (``"F"``, a float TIFF) as they are (:data:`WIDE_MODES`).
    """
    image = open_image(path)
    if image.mode in WIDE_MODES:
        return _wide_image(image, path, mode, size, resize)
    transparent = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    if transparent and mode != "RGBA":
        Image, _ = _pillow()
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    image = _fit_to(image.convert(mode), size, resize)
    pixels = np.asarray(image, dtype=np.float32) / np.float32(255)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _wide_image(image, path, mode: str, size, resize: str) -> np.ndarray:
    """A one-channel image of more than 8 bits a value as float32 ``(C, H, W)``,
    scaled by its bit depth (:data:`WIDE_MODES`), resized in float, and repeated to
    the channels of ``mode`` (an opaque alpha channel for ``"RGBA"``)."""
    Image, _ = _pillow()
    values = np.asarray(image)
    if not np.isfinite(values).all():
        raise ValueError(f"image file {str(os.fspath(path))!r} (mode {image.mode!r}) holds "
                         "NaN or infinite values")
    if image.mode != "F" and values.min() < 0:
        raise ValueError(f"image file {str(os.fspath(path))!r} (mode {image.mode!r}, 32-bit "
                         "integers) holds negative values, which no bit depth maps to "
                         "[0, 1]; store it as unsigned or float values")
    gray = (values / np.float64(WIDE_MODES[image.mode])).astype(np.float32)  # (H, W)
    gray = np.asarray(_fit_to(Image.fromarray(gray), size, resize), dtype=np.float32)
    channels = [gray] * (1 if mode == "L" else 3)
    if mode == "RGBA":
        channels.append(np.ones_like(gray))
    return np.stack(channels)


def _is_gray(path) -> bool:
    # the header says the mode: no need to decode every training image twice
    return open_image(path, header_only=True).mode in GRAY_MODES


def _paths(X) -> list:
    """X as a list of paths: a list, tuple, 1-D array or pandas Series of str/PathLike."""
    if isinstance(X, (str, os.PathLike)):
        raise TypeError("ImageLoader takes a list of paths, got a single path; wrap it in "
                        "a list: [path]")
    values = list(np.asarray(X, dtype=object).ravel()) if not isinstance(X, list) else X
    bad = [v for v in values if not isinstance(v, (str, os.PathLike))]
    if bad:
        raise TypeError(f"ImageLoader takes file paths (str or path-like), got "
                        f"{type(bad[0]).__name__} {bad[0]!r}")
    if not values:
        raise ValueError("ImageLoader got no paths (an empty list)")
    return values


def _fitted_images(estimator, X) -> np.ndarray:
    """X as images of the shape ``estimator`` was fitted on (flat rows of as many
    values included), or a ValueError in scikit-learn's words."""
    check_is_fitted(estimator)
    X = check_array(X, allow_nd=True, dtype=None, ensure_all_finite=False)
    n_features = math.prod(X.shape[1:])
    if n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input (images "
                         f"of shape {estimator.input_shape_})")
    images = to_images(X, input_shape=estimator.input_shape_ if X.ndim == 2 else None)
    if images.shape[1:] != estimator.input_shape_:
        raise ValueError(f"X holds images of shape {images.shape[1:]}, but "
                         f"{type(estimator).__name__} was fitted on {estimator.input_shape_}")
    return images


class _TakesImages:
    """Tags of a transformer that takes images (3-D and 4-D arrays) and keeps their
    float type."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class ImageLoader(TransformerMixin, BaseEstimator):
    """Read image files into float32 images ``(n, C, H, W)`` in [0, 1] (Pillow).

    PNG, JPEG, BMP, GIF (first frame), TIFF and WebP; EXIF orientation is applied, so
    phone photos come out upright. Put it first in a pipeline to fit and predict on
    file paths: ``make_pipeline(ImageLoader(size=28), CNNClassifier())``.

    Parameters
    ----------
    size : int or tuple of (int, int), default=None
        ``(H, W)`` of every image (an int: square). None: the size of the first
        training image, which every file must then have.
    mode : {"auto", "L", "RGB", "RGBA"}, default="auto"
        Channels: ``"L"`` one grey channel, ``"RGB"`` three, ``"RGBA"`` four.
        ``"auto"`` decides at ``fit``: ``"L"`` when every training image is
        greyscale, else ``"RGB"``. Transparent images read as ``"L"`` or ``"RGB"``
        are composed onto black.
    resize : {"stretch", "crop", "pad"}, default="stretch"
        How an image of another size reaches ``size``: stretched to it, scaled to
        cover it and centre-cropped (keeps the aspect ratio), or scaled to fit it
        and centre-padded with black.

    Attributes
    ----------
    mode_ : str
        The mode images are read in.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the images ``transform`` returns.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from PIL import Image
    >>> from sklearn_cnn.preprocessing import ImageLoader
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(3)]
    >>> for i, path in enumerate(paths):
    ...     Image.fromarray(np.full((20, 30), 80 * i, dtype=np.uint8)).save(path)
    >>> images = ImageLoader(size=(16, 16)).fit_transform(paths)
    >>> images.shape, images.dtype, float(images.max())
    ((3, 1, 16, 16), dtype('float32'), 0.627...)
    """

    _parameter_constraints = {  # noqa: RUF012  (scikit-learn's convention)
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "mode": [StrOptions({"auto", "L", "RGB", "RGBA"})],
        "resize": [StrOptions({"stretch", "crop", "pad"})],
    }

    def __init__(self, size=None, mode="auto", resize="stretch"):
        self.size = size
        self.mode = mode
        self.resize = resize

    def fit(self, X, y=None) -> ImageLoader:
        """Decide the mode and size from the training files.

        Parameters
        ----------
        X : list of str or path-like
        y : ignored

        Returns
        -------
        self : ImageLoader
        """
        self._validate_params()
        paths = _paths(X)
        size = _size_pair(self.size)
        mode = self.mode
        if mode == "auto":
            mode = "L" if all(_is_gray(p) for p in paths) else "RGB"
        if size is None:
            width, height = open_image(paths[0]).size
            size = (height, width)
        self.mode_ = mode
        self.image_shape_ = ({"L": 1, "RGB": 3, "RGBA": 4}[mode], *size)
        return self

    def transform(self, X) -> np.ndarray:
        """Read the files.

        Parameters
        ----------
        X : list of str or path-like

        Returns
        -------
        ndarray of shape (n_files, C, H, W), float32 in [0, 1]
        """
        check_is_fitted(self)
        size, fixed = self.image_shape_[1:], _size_pair(self.size) is not None
        out = np.empty((len(paths := _paths(X)), *self.image_shape_), dtype=np.float32)
        for index, path in enumerate(paths):  # one file at a time: decoding is per file
            image = read_image(path, mode=self.mode_, size=size if fixed else None,
                               resize=self.resize)
            if image.shape[1:] != size:
                raise ImageSizeError(f"image file {str(os.fspath(path))!r} is "
                                     f"{image.shape[2]}x{image.shape[1]} pixels, not "
                                     f"{size[1]}x{size[0]} as the first training image")
            out[index] = image
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags


class ChannelStandardizer(_TakesImages, TransformerMixin, BaseEstimator):
    """Standardize each channel of images: ``(x - mean_[c]) / scale_[c]``.

    The image counterpart of ``StandardScaler``: one mean and one standard deviation
    per channel over every pixel of the training images (StandardScaler on flat
    images would fit one per pixel, and cannot take images at all).

    Parameters
    ----------
    with_mean, with_std : bool, default=True
        Centre, and scale to unit variance.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_channels,)
        Per-channel mean and standard deviation (1 where a channel is constant).
    input_shape_ : tuple of int
        ``(C, H, W)`` of the training images.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import ChannelStandardizer
    >>> X = np.random.default_rng(0).random((10, 3, 4, 4)).astype(np.float32)
    >>> Z = ChannelStandardizer().fit_transform(X)
    >>> bool(np.allclose(Z.mean(axis=(0, 2, 3)), 0, atol=1e-6)), Z.shape
    (True, (10, 3, 4, 4))
    """

    _parameter_constraints = {  # noqa: RUF012
        "with_mean": ["boolean"], "with_std": ["boolean"]}

    def __init__(self, *, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def fit(self, X, y=None) -> ChannelStandardizer:
        """Compute each channel's mean and standard deviation.

        Parameters
        ----------
        X : images, in any layout ``CNNClassifier.fit`` accepts
        y : ignored

        Returns
        -------
        self : ChannelStandardizer
        """
        self._validate_params()
        images = to_images(X)
        channels = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1)  # (C, N*H*W)
        mean = channels.mean(axis=1, dtype=np.float64)
        std = channels.std(axis=1, dtype=np.float64)
        self.mean_ = mean if self.with_mean else np.zeros_like(mean)
        self.scale_ = np.where(std > 0, std, 1.0) if self.with_std else np.ones_like(std)
        self.input_shape_ = images.shape[1:]
        self.n_features_in_ = math.prod(self.input_shape_)
        return self

    def transform(self, X) -> np.ndarray:
        """Standardize.

        Parameters
        ----------
        X : images, in any layout ``fit`` accepts

        Returns
        -------
        ndarray of shape (n_samples, C, H, W), in X's float type (float32 for others)
        """
        images = _fitted_images(self, X)
        mean, scale = self._per_channel(images.dtype)
        return (images - mean) / scale

    def inverse_transform(self, X) -> np.ndarray:
        """Undo :meth:`transform`."""
        images = _fitted_images(self, X)
        mean, scale = self._per_channel(images.dtype)
        return images * scale + mean

    def _per_channel(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        """``mean_`` and ``scale_`` in ``dtype``, shaped (1, C, 1, 1) to broadcast."""
        return tuple(v.astype(dtype)[None, :, None, None] for v in (self.mean_, self.scale_))


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``images`` (N, C, H, W) to ``size`` (H, W), pixel centres
    aligned as ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)`` (no antialiasing: shrink by large factors in steps)."""
    n, _, h, w = images.shape
    out_h, out_w = size
    # the source coordinate of each output pixel's centre, clamped to the image
    src_y = np.clip((np.arange(out_h) + 0.5) * h / out_h - 0.5, 0, h - 1)
    src_x = np.clip((np.arange(out_w) + 0.5) * w / out_w - 0.5, 0, w - 1)
    grid_y = np.broadcast_to(src_y[None, :, None], (n, out_h, out_w))
    grid_x = np.broadcast_to(src_x[None, None, :], (n, out_h, out_w))
    return _bilinear(images, grid_y, grid_x)


class Resize(_TakesImages, TransformerMixin, BaseEstimator):
    """Resize images to ``size`` (bilinear): another size than they came in. As
    every fitted transformer, it then takes images of the size it was fitted on.

    Parameters
    ----------
    size : int or tuple of (int, int)
        ``(H, W)`` of the result (an int: square).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import Resize
    >>> Resize(16).fit_transform(np.ones((2, 8, 8), dtype=np.float32)).shape
    (2, 1, 16, 16)
    """

    _parameter_constraints = {  # noqa: RUF012
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list]}

    def __init__(self, size=28):
        self.size = size

    def fit(self, X, y=None) -> Resize:
        """Check the parameters and X (nothing is learned).

        Parameters
        ----------
        X : images, in any layout ``CNNClassifier.fit`` accepts
        y : ignored

        Returns
        -------
        self : Resize
        """
        self._validate_params()
        _size_pair(self.size)
        self.input_shape_ = to_images(X).shape[1:]
        self.n_features_in_ = math.prod(self.input_shape_)
        return self

    def transform(self, X) -> np.ndarray:
        """Resize.

        Parameters
        ----------
        X : images, in any layout ``fit`` accepts

        Returns
        -------
        ndarray of shape (n_samples, C, size[0], size[1])
        """
        return resize_images(_fitted_images(self, X), _size_pair(self.size))

class ImagesToFlat(_TakesImages, TransformerMixin, BaseEstimator):
    """Images ``(n, C, H, W)`` (any accepted layout) -> rows ``(n, C*H*W)``, for the
    2-D transformers of scikit-learn (PCA, StandardScaler...); :class:`FlatToImages`
    goes back. Output names are ``c{channel}_y{row}_x{column}``, so ``set_output``
    can give a DataFrame.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import ImagesToFlat
    >>> flat = ImagesToFlat().fit(np.zeros((2, 3, 4, 4)))
    >>> flat.transform(np.zeros((2, 3, 4, 4))).shape, flat.get_feature_names_out()[:2]
    ((2, 48), array(['c0_y0_x0', 'c0_y0_x1'], dtype=object))
    """

    def fit(self, X, y=None) -> ImagesToFlat:
        """Remember the image shape.

        Parameters
        ----------
        X : images, in any layout ``CNNClassifier.fit`` accepts
        y : ignored

        Returns
        -------
        self : ImagesToFlat
        """
        self.input_shape_ = to_images(X).shape[1:]
        self.n_features_in_ = math.prod(self.input_shape_)
        return self

    def transform(self, X) -> np.ndarray:
        """Flatten images to rows.

        Parameters
        ----------
        X : images of the fitted shape

        Returns
        -------
        ndarray of shape (n_samples, C*H*W)
        """
        images = _fitted_images(self, X)
        return images.reshape(len(images), -1)

    def inverse_transform(self, X) -> np.ndarray:
        """Rows back to images ``(n, C, H, W)``."""
        check_is_fitted(self)
        return np.asarray(X).reshape(len(X), *self.input_shape_)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``c{channel}_y{row}_x{column}`` for every value of an image."""
        check_is_fitted(self)
        c, h, w = self.input_shape_
        channel, row, column = np.indices((c, h, w)).reshape(3, -1)
        return np.array([f"c{a}_y{b}_x{d}" for a, b, d in zip(channel, row, column,
                                                                strict=True)], dtype=object)


class FlatToImages(TransformerMixin, BaseEstimator):
    """Rows ``(n, C*H*W)`` -> images ``(n, C, H, W)``: back from the 2-D transformers
    of scikit-learn to the image ones.

    Parameters
    ----------
    input_shape : tuple of int, default=None
        ``(C, H, W)`` or ``(H, W)`` of one image. None: read rows as
        ``CNNClassifier`` does (a square number of values is one square channel).

    Attributes
    ----------
    input_shape_ : tuple of int
        ``(C, H, W)`` of the images ``transform`` returns.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import FlatToImages
    >>> FlatToImages((1, 8, 8)).fit_transform(np.zeros((5, 64))).shape
    (5, 1, 8, 8)
    """

    _parameter_constraints = {"input_shape": [tuple, list, np.ndarray, None]}  # noqa: RUF012

    def __init__(self, input_shape: Sequence[int] | None = None):
        self.input_shape = input_shape

    def fit(self, X, y=None) -> FlatToImages:
        """Decide the image shape of the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, C*H*W)
        y : ignored

        Returns
        -------
        self : FlatToImages
        """
        self._validate_params()
        X = check_array(X, dtype=None, ensure_all_finite=False)
        self.input_shape_ = to_images(X, input_shape=self.input_shape).shape[1:]
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """Reshape rows to images.

        Parameters
        ----------
        X : array-like of shape (n_samples, C*H*W)

        Returns
        -------
        ndarray of shape (n_samples, C, H, W)
        """
        check_is_fitted(self)
        X = check_array(X, dtype=None, ensure_all_finite=False)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but FlatToImages is expecting "
                             f"{self.n_features_in_} features as input (rows of images of "
                             f"shape {self.input_shape_})")
        return to_images(X, input_shape=self.input_shape_)
