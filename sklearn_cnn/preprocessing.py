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
from collections.abc import Sequence
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ._image_files import (  # noqa: F401  (the readers, importable from here too)
    GRAY_MODES,
    IMAGE_SUFFIXES,
    WIDE_MODES,
    ImageSizeError,
    LazyImages,
    _paths,
    _size_pair,
    open_image,
    read_header,
    read_image,
    training_size,
)
from ._input import to_images
from .augment import _bilinear


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
    file paths: ``make_pipeline(ImageLoader(), CNNClassifier())``.

    Parameters
    ----------
    size : int or tuple of (int, int), default=None
        ``(H, W)`` of every image (an int: square). None: chosen at ``fit`` from the
        training files' headers: their size when they all have one, else their
        median height and width, scaled down to at most 256 pixels on the longer
        side (``size_note_`` says which). Images of another size are brought to it
        as ``resize`` says.
    mode : {"auto", "L", "RGB", "RGBA"}, default="auto"
        Channels: ``"L"`` one grey channel, ``"RGB"`` three, ``"RGBA"`` four.
        ``"auto"`` decides at ``fit``: ``"L"`` when every training image is
        greyscale, else ``"RGB"``. Transparent images read as ``"L"`` or ``"RGB"``
        are composed onto black.
    resize : {"stretch", "crop", "pad"}, default="stretch"
        How an image of another size reaches ``size``: stretched to it, scaled to
        cover it and centre-cropped (keeps the aspect ratio), or scaled to fit it
        and centre-padded with black.
    lazy : bool, default=False
        False: ``transform`` decodes every file into one array. True: it returns
        :class:`LazyImages`, which decodes only the files a batch asks for (large
        images on a pool of threads; on the NumPy backend the next batch while the
        current one trains): for folders larger than memory. Put it straight
        before the CNN: a transformer between them would read every image at once.

    Attributes
    ----------
    mode_ : str
        The mode images are read in.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the images ``transform`` returns.
    size_note_ : str
        How the size was chosen (with ``size=None``), or that it was given.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from PIL import Image
    >>> from sklearn_cnn.preprocessing import ImageLoader
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(3)]
    >>> for i, path in enumerate(paths):
    ...     Image.fromarray(np.full((20, 30 + i), 80 * i, dtype=np.uint8)).save(path)
    >>> loader = ImageLoader().fit(paths)
    >>> loader.image_shape_
    (1, 20, 31)
    >>> print(loader.size_note_)
    31x20 pixels, chosen from 3 training images of 3 sizes (from 30x20 to 32x20): ...
    >>> images = ImageLoader(size=(16, 16)).fit_transform(paths)
    >>> images.shape, images.dtype, float(images.max())
    ((3, 1, 16, 16), dtype('float32'), 0.627...)
    >>> ImageLoader(size=16, lazy=True).fit_transform(paths)
    LazyImages(3 files, shape=(3, 1, 16, 16))
    """

    _parameter_constraints = {  # noqa: RUF012  (scikit-learn's convention)
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "mode": [StrOptions({"auto", "L", "RGB", "RGBA"})],
        "resize": [StrOptions({"stretch", "crop", "pad"})],
        "lazy": ["boolean"],
    }

    def __init__(self, size=None, mode="auto", resize="stretch", lazy=False):
        self.size = size
        self.mode = mode
        self.resize = resize
        self.lazy = lazy

    def fit(self, X, y=None) -> ImageLoader:
        """Decide the mode and size from the training files (their headers only).

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
        headers = [read_header(p) for p in paths] if mode == "auto" or size is None else []
        if mode == "auto":
            mode = "L" if all(m in GRAY_MODES for m, _ in headers) else "RGB"
        note = f"{size[1]}x{size[0]} pixels, as given" if size is not None else None
        if size is None:
            size, note = training_size([hw for _, hw in headers])
        self.mode_ = mode
        self.image_shape_ = ({"L": 1, "RGB": 3, "RGBA": 4}[mode], *size)
        self.size_note_ = note
        return self

    def transform(self, X) -> np.ndarray | LazyImages:
        """Read the files (or, with ``lazy=True``, say which to read).

        Parameters
        ----------
        X : list of str or path-like

        Returns
        -------
        ndarray of shape (n_files, C, H, W), float32 in [0, 1]
            Or :class:`LazyImages` of that shape with ``lazy=True``.
        """
        check_is_fitted(self)
        images = LazyImages(_paths(X), mode=self.mode_, size=self.image_shape_[1:],
                            resize=self.resize)
        return images if self.lazy else np.asarray(images)

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
