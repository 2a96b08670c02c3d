"""Image files: reading them (Pillow), and :class:`LazyImages`, files that are
decoded only when a batch asks for them.

:class:`~sklearn_cnn.preprocessing.ImageLoader` reads through these functions: every
mode Pillow opens comes in as float32 ``(C, H, W)`` in [0, 1], upright as its EXIF
orientation says, brought to one size as ``resize`` says.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np

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
            if _may_be_turned(image):
                ImageOps.exif_transpose(image, in_place=True)  # no copy when upright
            return image
    except FileNotFoundError:
        raise ValueError(f"image file {str(os.fspath(path))!r} does not exist") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"image file {str(os.fspath(path))!r} cannot be read as an image "
                         f"({type(exc).__name__}: {exc})") from None


def _may_be_turned(image) -> bool:
    """Whether ``image`` (loaded) may carry an EXIF orientation: anything but a PNG
    without EXIF data, whose check (Pillow parsing an empty EXIF block) would cost
    a tenth of decoding a small PNG."""
    return image.format != "PNG" or "exif" in image.info \
        or "Raw profile type exif" in image.info


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
    image = _fit_to(image if image.mode == mode else image.convert(mode), size, resize)
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




#: ``size=None`` with training images of several sizes: their median height and
#: width, scaled down (aspect kept) so that the longer side is at most this
MAX_CHOSEN_SIDE = 256
#: EXIF orientations that turn an image by 90 degrees (width and height swap)
_TURNED = (5, 6, 7, 8)


def read_header(path) -> tuple[str, tuple[int, int]]:
    """``(mode, (H, W))`` of the image at ``path`` once turned upright (as its EXIF
    orientation says), from its header: no pixel is decoded."""
    image = open_image(path, header_only=True)
    width, height = image.size
    try:
        turned = image.getexif().get(0x0112, 1) in _TURNED
    except Exception:  # a broken EXIF block: the file's own size
        turned = False
    return image.mode, ((width, height) if turned else (height, width))


def training_size(sizes: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], str]:
    """The size ``(H, W)`` that ``size=None`` chooses from the training images'
    ``sizes`` (from :func:`read_header`), and a sentence saying how: their one size
    when they share it; else their median height and width, scaled down to at most
    :data:`MAX_CHOSEN_SIDE` pixels on the longer side."""
    sizes = np.array(sizes)                                            # (n, 2)
    if (sizes == sizes[0]).all():
        height, width = sizes[0]
        return (int(height), int(width)), f"{width}x{height} pixels, the size of every " \
            "training image"
    height, width = np.median(sizes, axis=0)
    scale = min(1.0, MAX_CHOSEN_SIDE / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    low, high = sizes.min(axis=0), sizes.max(axis=0)
    return size, (f"{size[1]}x{size[0]} pixels, chosen from {len(sizes)} training images "
                  f"of {len(np.unique(sizes, axis=0))} sizes (from {low[1]}x{low[0]} to "
                  f"{high[1]}x{high[0]}): their median width and height"
                  + (f", scaled down to {MAX_CHOSEN_SIDE} pixels on the longer side"
                     if scale < 1 else ""))


#: images of at least this many pixels (H * W) are decoded on a pool of threads;
#: smaller ones on the calling thread: a 28x28 PNG costs 50 microseconds, mostly
#: Pillow's Python code under the interpreter lock, and two threads took twice as
#: long as one (measured: 120 against 57 per image), where 224x224 JPEGs take
#: 1.2 ms on two threads against 2.2 on one
THREADS_FROM = 64 * 64


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


class LazyImages:
    """Image files as an array ``(n, C, H, W)`` of float32 in [0, 1], decoded only
    where it is indexed.

    What :class:`~sklearn_cnn.preprocessing.ImageLoader` with ``lazy=True`` returns:
    an estimator of this package then reads it batch by batch, so only a batch of
    images is ever decoded and held, on a pool of threads (Pillow decodes without
    holding Python's lock; images under 64x64 pixels, whose decoding is mostly
    Python, on the calling thread). Indexing with an int, a slice, an integer array or a
    boolean mask returns a float32 ndarray; ``np.asarray`` decodes every file.

    Parameters
    ----------
    paths : sequence of str or path-like
    mode : {"L", "RGB", "RGBA"}
    size : tuple of (int, int)
        ``(H, W)`` every image is brought to, as ``resize`` says.
    resize : {"stretch", "crop", "pad"}, default="stretch"
    threads : int, default=None
        Files decoded at once; None: the CPUs this process may use for images of
        64x64 pixels or more, one below.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from PIL import Image
    >>> from sklearn_cnn.preprocessing import LazyImages
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(5)]
    >>> for i, path in enumerate(paths):
    ...     Image.fromarray(np.full((20, 30), 50 * i, dtype=np.uint8)).save(path)
    >>> images = LazyImages(paths, mode="L", size=(10, 10))
    >>> images.shape, images.dtype
    ((5, 1, 10, 10), dtype('float32'))
    >>> images[[4, 1]].max(axis=(1, 2, 3))    # two files decoded, no more
    array([0.78431374, 0.19607843], dtype=float32)
    """

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, paths: Sequence, *, mode: str, size: tuple[int, int],
                 resize: str = "stretch", threads: int | None = None):
        self.paths = list(paths)
        self.mode = mode
        self.size = tuple(size)
        self.resize = resize
        self.threads = threads
        self.shape = (len(self.paths), {"L": 1, "RGB": 3, "RGBA": 4}[mode], *self.size)
        self._pool = None

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"LazyImages({len(self)} files, shape={self.shape})"

    def _read(self, path) -> np.ndarray:
        return read_image(path, mode=self.mode, size=self.size, resize=self.resize)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._read(self.paths[key])
        rows = np.arange(len(self))[key]
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.float32)
        threads = self.threads or (_cpus() if math.prod(self.size) >= THREADS_FROM else 1)
        chunks = np.array_split(np.arange(len(rows)), min(threads, max(len(rows), 1)))

        def decode(chunk: np.ndarray) -> None:  # a share of the files, in order
            for i in chunk:
                out[i] = self._read(self.paths[rows[i]])

        if len(chunks) == 1:
            decode(chunks[0])
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(threads, thread_name_prefix="sklearn-cnn-decode")
        list(self._pool.map(decode, chunks))  # raises what a decode raised
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        images = self[:]
        return images if dtype is None else images.astype(dtype)

    def __getstate__(self) -> dict:
        return {**vars(self), "_pool": None}  # threads do not pickle

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False)
