"""Images read batch by batch: training and prediction beyond memory.

A fit normally validates ``X`` whole and converts it to one float array: a ``uint8``
array becomes a float32 copy four times its size. For data that does not fit in
memory that copy is the limit, so ``X`` is *streamed* instead when it is

- a memory-mapped array (``np.memmap``, ``np.load(..., mmap_mode="r")``),
- any other array-like with ``len()``, ``shape``, ``dtype`` and integer-array
  indexing that is not a NumPy array (an HDF5 or zarr dataset, a Dask array, the
  lazy images of :class:`~sklearn_cnn.preprocessing.ImageLoader` with ``lazy=True``),
- or an in-memory array whose float copy would exceed :data:`STREAM_ABOVE` bytes.

A stream is an :class:`ImageStream`: it reads the rows a batch asks for, and checks
and converts only them, with the same rules (and the same errors) as a whole array
(:func:`~sklearn_cnn._input.to_images`). Memory then depends on the batch size,
not on the number of images. Everything else keeps today's path and speed.
"""

from __future__ import annotations

import math
import mmap
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from scipy import sparse

from ._input import as_numpy, normalize_input_shape, to_images

#: an in-memory array whose float copy would be larger than this many bytes is read
#: batch by batch too (1 GiB: 340,000 images of 28x28 in float32)
STREAM_ABOVE = 2**30
#: rows read to learn a stream's image shape and to check its layout up front
FIRST_ROWS = 64
#: a memory-mapped file's pages that a stream has read are handed back to the
#: system once reads may have mapped this many bytes (see ``ImageStream._release``)
RELEASE_BYTES = 32 * 2**20
#: what one read of a row may map: Linux maps whole "folios" of a file's cache
#: around a faulting page (measured: about 680 KiB per scattered 784-byte row of a
#: file the system had just written), far more than the row's own bytes
MAPPED_PER_READ = 2**20

_T = TypeVar("_T")


def is_streamed(X) -> bool:
    """Whether ``X`` is read batch by batch (see the module's docstring)."""
    if isinstance(X, ImageStream):
        return True
    if isinstance(X, np.memmap):
        return X.ndim >= 2 and X.dtype.kind in "uif"
    if isinstance(X, np.ndarray):
        converted = X.dtype not in (np.float32, np.float64)
        return (X.ndim >= 2 and X.dtype.kind in "uif" and converted
                and X.size * 4 > STREAM_ABOVE)
    if (isinstance(X, (list, tuple, str, bytes)) or hasattr(X, "__array_namespace__")
            or sparse.issparse(X)):
        return False  # lists are small by nature; torch tensors and friends convert
    shape = getattr(X, "shape", None)
    return (hasattr(X, "__len__") and hasattr(X, "__getitem__")
            and isinstance(shape, tuple) and len(shape) >= 2
            and _kind(getattr(X, "dtype", None)) in tuple("uif"))


def _kind(dtype) -> str:
    """The NumPy kind of ``dtype`` ("u", "i", "f"...), or "" when it is none."""
    try:
        return "" if dtype is None else np.dtype(dtype).kind
    except TypeError:
        return ""


def as_images(X, *, input_shape=None, channels: str = "auto", dtype=None,
              keep_pixels: bool = False):
    """X as validated images: an :class:`ImageStream` when X is streamed, else the
    array :func:`~sklearn_cnn._input.to_images` makes of it."""
    X = as_numpy(X, "X")
    if is_streamed(X):
        if isinstance(X, ImageStream):
            return X if dtype is None else X.astype(dtype)
        return ImageStream(X, input_shape=input_shape, channels=channels, dtype=dtype)
    return to_images(X, input_shape=input_shape, channels=channels, dtype=dtype,
                     keep_pixels=keep_pixels)


class ImageStream:
    """A read-only array of images ``(N, C, H, W)`` in a float type, read from
    ``source`` only where indexed.

    Indexing with an int, a slice, an integer array or a boolean mask reads those
    rows of ``source`` (in increasing order, as HDF5 datasets need), validates and
    converts them as :func:`~sklearn_cnn._input.to_images` does (``uint8`` scaled to
    [0, 1]; NaN, infinity, strings refused) and returns a float ndarray.

    Parameters
    ----------
    source : array-like
        Images in any layout ``fit`` accepts, with ``len()``, ``shape``, ``dtype``
        and integer-array indexing.
    input_shape, channels : as the estimators' parameters of these names
    dtype : float32 or float64, default=None
        The float type of the images read; None: float64 for a float64 source, else
        float32.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn._streaming import ImageStream
    >>> pixels = np.arange(5 * 8 * 8, dtype=np.uint8).reshape(5, 8, 8)
    >>> images = ImageStream(pixels)
    >>> images.shape, images.dtype
    ((5, 1, 8, 8), dtype('float32'))
    >>> images[[3, 1]].shape, float(images[0].max())
    ((2, 1, 8, 8), 0.247...)
    """

    ndim = 4

    def __init__(self, source, *, input_shape=None, channels: str = "auto", dtype=None,
                 rows: np.ndarray | None = None, then: tuple[Callable, ...] = ()):
        self.source = source
        self.input_shape = normalize_input_shape(input_shape)
        self.channels = channels
        self.rows = rows
        self.then = then  # functions of each batch read (test-time views)
        self._read = [0, threading.Lock()]  # bytes read since the last release
        n_source = len(source)
        if dtype is None:
            dtype = np.float64 if np.dtype(source.dtype) == np.float64 else np.float32
        self.dtype = np.dtype(dtype)
        # the first rows show the layout (and refuse a wrong one) before any training
        first = self._convert(source[:max(1, min(n_source, FIRST_ROWS))])
        self.shape = (n_source if rows is None else len(rows), *first.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return (f"ImageStream(shape={self.shape}, dtype={self.dtype}, "
                f"source={type(self.source).__name__})")

    def _convert(self, batch) -> np.ndarray:
        return to_images(np.asarray(batch), input_shape=self.input_shape,
                         channels=self.channels, dtype=self.dtype)

    def _positions(self, key) -> np.ndarray | slice:
        """``key`` as positions in ``source`` (a slice where it stays one)."""
        n = len(self)
        if isinstance(key, slice) and self.rows is None:
            start, stop, step = key.indices(n)
            return slice(start, stop, step) if step > 0 else np.arange(start, stop, step)
        index = np.arange(n)[key] if isinstance(key, slice) else np.asarray(key)
        if index.size == 0:  # [] reads as floats; it selects nothing
            index = index.astype(np.intp)
        if index.dtype == bool:
            if index.shape != (n,):
                raise IndexError(f"boolean index of shape {index.shape} for {n} images")
            index = np.flatnonzero(index)
        elif index.dtype.kind not in "iu":
            raise IndexError(f"images are indexed by ints, slices or boolean masks, not "
                             f"{index.dtype}")
        if index.size and (index.max() >= n or index.min() < -n):
            raise IndexError(f"image index out of range for {n} images")
        index = index % n if index.size else index.astype(np.intp)
        return index if self.rows is None else self.rows[index]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):  # images[rows, ...] style: rows first, then the rest
            return self[key[0]][(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        positions = self._positions(key)
        if len(range(len(self))[positions] if isinstance(positions, slice) else positions) == 0:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)  # nothing to read
        if isinstance(positions, slice):
            batch = self.source[positions]
        else:  # increasing and unique, as HDF5 datasets need, then back in order
            unique, back = np.unique(positions, return_inverse=True)
            batch = np.asarray(self.source[unique])[back.reshape(-1)]
        images = self._convert(batch)
        batch = np.asarray(batch)
        rows = 1 if isinstance(positions, slice) else len(batch)  # separate reads
        self._release(max(batch.nbytes, rows * MAPPED_PER_READ))
        if images.shape[1:] != self.shape[1:]:
            raise ValueError(f"X holds images of different shapes: {images.shape[1:]} "
                             f"and {self.shape[1:]} (C, H, W)")
        for function in self.then:
            images = function(images)
        return images

    def _release(self, nbytes: int) -> None:
        """Every :data:`RELEASE_BYTES` that reads may have mapped (``nbytes``) from a
        read-only or shared memory map, its pages leave this process
        (``madvise(MADV_DONTNEED)``): they stay in the system's file cache, so
        reading them again costs no disk access, but they no longer count as this
        process's resident memory, which would otherwise grow to the whole file over
        an epoch. A private copy-on-write map (mode ``"c"``) keeps its pages: they
        may hold changes."""
        pages = getattr(self.source, "_mmap", None)
        if (pages is None or getattr(self.source, "mode", "c") not in ("r", "r+")
                or not hasattr(mmap, "MADV_DONTNEED")):
            return
        with self._read[1]:
            self._read[0] += nbytes
            if self._read[0] < RELEASE_BYTES:
                return
            self._read[0] = 0
            try:
                pages.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # a closed map, or a system that refuses
                pass

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Every image, read whole (only on request: this is the memory a stream
        saves)."""
        images = np.concatenate([self[begin:begin + 1024]
                                 for begin in range(0, max(len(self), 1), 1024)])
        return images if dtype is None else images.astype(dtype)

    def __getstate__(self) -> dict:
        return {**vars(self), "_read": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _read=[0, threading.Lock()])

    def _view(self, **changes) -> ImageStream:
        view = object.__new__(ImageStream)
        view.__dict__.update(vars(self), **changes)
        return view

    def take(self, rows) -> ImageStream:
        """The images at ``rows`` (positions in this stream), still unread."""
        positions = self._positions(np.asarray(rows, dtype=np.intp))
        positions = np.arange(positions.start, positions.stop, positions.step) \
            if isinstance(positions, slice) else positions
        return self._view(rows=positions, shape=(len(positions), *self.shape[1:]))

    def mapped(self, function: Callable[[np.ndarray], np.ndarray]) -> ImageStream:
        """The same images, each batch passed through ``function`` as it is read (a
        test-time view: mirrored, moved)."""
        return self._view(then=(*self.then, function))

    def astype(self, dtype) -> ImageStream:
        return self._view(dtype=np.dtype(dtype))


def take(images, rows: np.ndarray):
    """``images[rows]``: for a stream, a view that reads them later."""
    return images.take(rows) if isinstance(images, ImageStream) else images[rows]


def transformed(images, function: Callable[[np.ndarray], np.ndarray]):
    """``function(images)``, for a stream a view that applies it batch by batch."""
    return images.mapped(function) if isinstance(images, ImageStream) else function(images)


def first_rows(images) -> np.ndarray:
    """Some images to look at (a stream's first :data:`FIRST_ROWS`): what the fit's
    "unscaled pixels?" warning reads."""
    return images[:FIRST_ROWS] if isinstance(images, ImageStream) else images


def prefetched(items: Iterator[_T]) -> Iterator[_T]:
    """``items``, each produced on a worker thread while the caller works on the one
    before: the next batch is read (and decoded) while the current one trains."""
    end = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sklearn-cnn-prefetch"
                            ) as pool:
        upcoming = pool.submit(next, items, end)
        while (item := upcoming.result()) is not end:
            upcoming = pool.submit(next, items, end)
            yield item
