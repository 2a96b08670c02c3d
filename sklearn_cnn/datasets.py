"""Image datasets as (n, C, H, W) arrays, with scikit-learn's Bunch conventions.

Nothing here downloads: MNIST-style IDX files are read from ``data_home``, the
``SKLEARN_CNN_DATA`` environment variable, or Debian's ``dataset-fashion-mnist``
package directory.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]

_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) as an array of the shape its header gives.

    Raises
    ------
    ValueError
        If the magic number is wrong or the file is shorter or longer than its header
        says: a corrupt file never yields a silently short array.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path} has {len(data)} bytes but its header {shape} needs "
                         f"{expected}: the file is truncated or corrupt")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(name: str, data_home, defaults: list[Path]) -> Path:
    folders = [Path(data_home)] if data_home is not None else []
    if os.environ.get("SKLEARN_CNN_DATA"):
        folders.append(Path(os.environ["SKLEARN_CNN_DATA"]))
    folders += defaults
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"{name}[.gz] not found; looked in {[str(f) for f in folders]}. Put the IDX "
        "files in one of them, pass data_home=..., or set SKLEARN_CNN_DATA"
    )


def _load_idx_pair(subset, data_home, defaults, return_X_y, target_names, descr):
    if subset not in _IDX_FILES:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    images_name, labels_name = _IDX_FILES[subset]
    images = read_idx(_find(images_name, data_home, defaults))
    labels = read_idx(_find(labels_name, data_home, defaults))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"IDX images {images.shape} and labels {labels.shape} do not "
                         "pair up as (n, H, W) and (n,)")
    X = (images[:, None, :, :] / np.float32(255)).astype(np.float32)
    y = labels.astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, target_names=target_names, DESCR=descr)


def load_fashion_mnist(*, subset: str = "train", data_home=None, return_X_y: bool = False):
    """Fashion-MNIST: 28x28 grayscale clothing images in 10 classes.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        60,000 training or 10,000 test images.
    data_home : str or path, default=None
        Folder with the four IDX files (raw or gzip). Also searched: the
        ``SKLEARN_CNN_DATA`` environment variable and ``/usr/share/datasets/
        fashion-mnist`` (Debian: ``apt-get install dataset-fashion-mnist``).
    return_X_y : bool, default=False

    Returns
    -------
    Bunch with ``data`` (n, 1, 28, 28) float32 in [0, 1], ``target`` (n,) int64,
    ``target_names``; or ``(data, target)`` if ``return_X_y``.
    """
    return _load_idx_pair(subset, data_home, [DEBIAN_FASHION_MNIST], return_X_y,
                          FASHION_MNIST_CLASSES, "Fashion-MNIST (Zalando, 2017)")


def load_mnist(*, subset: str = "train", data_home=None, return_X_y: bool = False):
    """MNIST handwritten digits from IDX files; same conventions as
    :func:`load_fashion_mnist` (no default folder besides ``SKLEARN_CNN_DATA``)."""
    return _load_idx_pair(subset, data_home, [], return_X_y,
                          [str(i) for i in range(10)], "MNIST (LeCun et al., 1998)")


def load_digits_images(*, return_X_y: bool = False):
    """scikit-learn's bundled 8x8 digits as images (1797, 1, 8, 8), scaled to [0, 1].

    Examples
    --------
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X.shape, float(X.max())
    ((1797, 1, 8, 8), 1.0)
    """
    digits = load_digits()
    X = (digits.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    if return_X_y:
        return X, digits.target
    return Bunch(data=X, target=digits.target, target_names=digits.target_names,
                 DESCR=digits.DESCR)
