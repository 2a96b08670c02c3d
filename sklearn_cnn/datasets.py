"""Image datasets as (n, C, H, W) arrays, with scikit-learn's Bunch conventions.

Files are read from ``data_home``, the ``SKLEARN_CNN_DATA`` environment variable,
``~/sklearn_cnn_data`` or (Fashion-MNIST) Debian's ``dataset-fashion-mnist`` package
directory. Nothing downloads unless asked: ``download=True`` fetches missing files
with torchvision's dataset classes, then this module reads them with its own readers.

MNIST-style data come as IDX files; CIFAR-10's "python version" as pickles, which
are read with an unpickler that builds only dicts, lists, bytes and numpy arrays,
so a tampered batch file cannot run code.
"""

from __future__ import annotations

import gzip
import importlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
#: where ``download=True`` puts files when neither data_home nor SKLEARN_CNN_DATA is set
DEFAULT_DATA_HOME = Path.home() / "sklearn_cnn_data"

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]

_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}
_CIFAR10_DIR = "cifar-10-batches-py"
_CIFAR10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)),
                  "test": ("test_batch",)}
_CIFAR10_SIDE = 32


def _open(path: str | os.PathLike):
    """``path`` opened for reading bytes, decompressed when it ends in ``.gz``."""
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) as an array of the shape its header gives.

    Raises
    ------
    ValueError
        If the magic number is wrong or the file is shorter or longer than its header
        says: a corrupt file never yields a silently short array.
    """
    with _open(path) as f:
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


# --- CIFAR-10 batches: pickles, read without running code -------------------------

def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """How Python 3 pickles ``bytes`` at protocol 2 (``_codecs.encode(text, 'latin1')``);
    only that encoding is allowed."""
    if not (isinstance(text, str) and encoding in ("latin1", "latin-1")):
        raise pickle.UnpicklingError(f"refusing _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The numpy callables that rebuild an ndarray, under the module names that numpy
    1.x (``numpy.core``) and 2.x (``numpy._core``) write into pickles."""
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
        numeric = importlib.import_module("numpy._core.numeric")
    except ImportError:  # numpy 1.x
        multiarray = importlib.import_module("numpy.core.multiarray")
        numeric = importlib.import_module("numpy.core.numeric")
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


#: every global a CIFAR-10 batch may name: numpy's array reconstruction, and how
#: Python 3 writes bytes at pickle protocol 2 (dicts, lists, ints need none)
_CIFAR10_GLOBALS = {("_codecs", "encode"): _latin1_bytes, **_numpy_globals()}


class _RefusedGlobal(ValueError):
    """A pickle named a global outside the allow list."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that builds dicts, lists, bytes and numpy arrays, and nothing else.

    ``pickle.load`` calls whatever callable a file names (``os.system``...), so a
    CIFAR batch from an untrusted source could run code. Here every global the file
    names is looked up in a short allow list; any other is refused before it is
    imported or called.
    """

    def __init__(self, file: io.BufferedIOBase, path: str | os.PathLike):
        super().__init__(file, encoding="bytes")  # Python 2 str -> bytes, as written
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        try:
            return _CIFAR10_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"{self.path} is not a CIFAR-10 batch: it names {module}.{name}, which "
                "a batch of images and labels never needs (refused without running it)"
            ) from None


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file of the CIFAR-10 "python version" (raw or ``.gz``).

    The file is a pickle of a dict with ``b"data"``, a uint8 array of shape
    ``(n, 3072)`` (each row 1024 red, then green, then blue values of a 32x32 image
    in row-major order), and ``b"labels"``, n ints in 0..9. It is unpickled with an
    allow list (numpy's array reconstruction, dicts, lists, bytes), never with plain
    ``pickle.load``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    data : ndarray of shape (n, 3072), dtype uint8
    labels : ndarray of shape (n,), dtype int64

    Raises
    ------
    ValueError
        If the file is truncated or corrupt, names any other Python object, or does
        not hold a dict of that form.
    """
    try:
        with _open(path) as f:
            batch = _CifarUnpickler(f, path).load()
    except _RefusedGlobal:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, MemoryError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path} is not a CIFAR-10 batch: the pickle is truncated or "
                         f"corrupt ({type(exc).__name__}: {exc})") from None
    return _check_cifar10_batch(batch, path)


def _check_cifar10_batch(batch: object, path) -> tuple[np.ndarray, np.ndarray]:
    """The (data, labels) of an unpickled batch, after checking its form."""
    if not isinstance(batch, dict):
        raise ValueError(f"{path} is not a CIFAR-10 batch: it holds a "
                         f"{type(batch).__name__}, not a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = {"data", "labels"} - set(batch)
    if missing:
        raise ValueError(f"{path} is not a CIFAR-10 batch: no {sorted(missing)} entry "
                         f"(keys: {sorted(map(str, batch))})")
    data, labels = batch["data"], batch["labels"]
    n_values = 3 * _CIFAR10_SIDE**2
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == n_values):
        described = (f"{data.dtype} array of shape {data.shape}"
                     if isinstance(data, np.ndarray) else type(data).__name__)
        raise ValueError(f"{path} is not a CIFAR-10 batch: data must be a uint8 array of "
                         f"shape (n, {n_values}), got a {described}")
    if not isinstance(labels, (list, np.ndarray)):
        raise ValueError(f"{path} is not a CIFAR-10 batch: labels must be a list of ints, "
                         f"got a {type(labels).__name__}")
    try:
        labels = np.asarray(labels)
    except ValueError:
        labels = np.asarray([], dtype=object)
    if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise ValueError(f"{path} is not a CIFAR-10 batch: {len(data)} images need "
                         f"{len(data)} integer labels, got {labels.dtype} array of "
                         f"shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(f"{path} is not a CIFAR-10 batch: labels must be in 0..9, got "
                         f"values from {labels.min()} to {labels.max()}")
    return data, labels.astype(np.int64)


# --- finding (and optionally downloading) the files --------------------------------

def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Folder that ``download=True`` writes to.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Returned as is when given.

    Returns
    -------
    Path
        ``data_home``, else ``$SKLEARN_CNN_DATA``, else ``~/sklearn_cnn_data``.
    """
    return _search_folders(data_home, [])[0]


def _search_folders(data_home, defaults: list[Path]) -> list[Path]:
    """``data_home``, ``$SKLEARN_CNN_DATA`` (those set), ``~/sklearn_cnn_data``, then
    ``defaults``."""
    folders = [Path(data_home)] if data_home is not None else []
    if os.environ.get("SKLEARN_CNN_DATA"):
        folders.append(Path(os.environ["SKLEARN_CNN_DATA"]))
    return [*folders, DEFAULT_DATA_HOME, *defaults]


def _find(name: str, data_home, defaults: list[Path], subdirs: tuple[str, ...] = (),
          what: str = "IDX files") -> Path:
    """First ``name`` or ``name.gz`` in the search folders or their ``subdirs`` (the
    layout torchvision downloads into)."""
    folders = _search_folders(data_home, defaults)
    for folder in folders:
        for sub in ("", *subdirs):
            for candidate in (folder / sub / name, folder / sub / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
    inside = f" (or their subfolders {', '.join(subdirs)})" if subdirs else ""
    raise FileNotFoundError(
        f"{name}[.gz] not found; looked in {[str(f) for f in folders]}{inside}. Put the "
        f"{what} in one of them, pass data_home=..., set SKLEARN_CNN_DATA, or pass "
        "download=True to fetch them with torchvision (pip install 'sklearn-cnn[torch]'; "
        "in a clone of the repository: pip install -e '.[torch]')"
    )


def _find_all(names, data_home, defaults, subdirs, what, download, torchvision_class):
    """Paths of every file in ``names``; with ``download``, fetch them first if any is
    missing (torchvision writes to ``get_data_home(data_home)``)."""
    try:
        return [_find(n, data_home, defaults, subdirs, what) for n in names]
    except FileNotFoundError:
        if not download:
            raise
    root = get_data_home(data_home)
    _torchvision_download(torchvision_class, root)
    return [_find(n, root, [], subdirs, what) for n in names]


def _torchvision_download(class_name: str, root: Path) -> None:
    """Let ``torchvision.datasets.<class_name>`` download its files into ``root``."""
    try:
        tv_datasets = importlib.import_module("torchvision.datasets")
    except ImportError as exc:
        raise ImportError("download=True fetches the files with torchvision, which is "
                          "not installed: pip install 'sklearn-cnn[torch]' (in a clone of "
                          "the repository: pip install -e '.[torch]')") from exc
    root.mkdir(parents=True, exist_ok=True)
    # one call fetches both subsets (torchvision checks all files before it skips)
    getattr(tv_datasets, class_name)(root=str(root), train=True, download=True)


# --- loaders -----------------------------------------------------------------------

def _check_subset(subset: str) -> None:
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")


def _bunch(X, y, return_X_y, target_names, descr):
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, target_names=target_names, DESCR=descr)


def _load_idx_pair(subset, data_home, defaults, return_X_y, target_names, descr,
                   download, torchvision_class):
    _check_subset(subset)
    subdirs = (f"{torchvision_class}/raw",)
    images_path, labels_path = _find_all(_IDX_FILES[subset], data_home, defaults, subdirs,
                                         "IDX files", download, torchvision_class)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"IDX images {images.shape} and labels {labels.shape} do not "
                         "pair up as (n, H, W) and (n,)")
    X = (images[:, None, :, :] / np.float32(255)).astype(np.float32)
    return _bunch(X, labels.astype(np.int64), return_X_y, target_names, descr)


FASHION_MNIST_DESCR = """\
Fashion-MNIST
-------------

Zalando's article images: 28x28 grayscale pictures of clothing, shoes and bags in
10 classes (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker,
Bag, Ankle boot), 7,000 of each: 60,000 training and 10,000 test images. Meant as
a harder drop-in replacement for MNIST, with the same image size, split and IDX
file format.

Reference: Han Xiao, Kashif Rasul and Roland Vollgraf, "Fashion-MNIST: a Novel
Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747,
2017. https://github.com/zalandoresearch/fashion-mnist (MIT licence).
"""

MNIST_DESCR = """\
MNIST
-----

Handwritten digits 0-9: 28x28 grayscale images, size-normalised and centred,
60,000 training and 10,000 test images, written by Census Bureau employees and
high-school students.

Reference: Yann LeCun, Leon Bottou, Yoshua Bengio and Patrick Haffner,
"Gradient-based learning applied to document recognition", Proceedings of the
IEEE 86(11), 1998.
"""


CIFAR10_DESCR = """\
CIFAR-10
--------

32x32 colour photographs in 10 classes (airplane, automobile, bird, cat, deer, dog,
frog, horse, ship, truck), 6,000 of each: 50,000 training images in five batches and
10,000 test images, read here from the "python version" batch files.

Reference: Alex Krizhevsky, "Learning Multiple Layers of Features from Tiny
Images", technical report, University of Toronto, 2009.
"""


def load_fashion_mnist(*, subset: str = "train", data_home: str | os.PathLike | None = None,
                       return_X_y: bool = False, download: bool = False):
    """Fashion-MNIST: 28x28 grayscale clothing images in 10 classes.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        60,000 training or 10,000 test images.
    data_home : str or path, default=None
        Folder with the four IDX files (raw or gzip), directly or in torchvision's
        ``FashionMNIST/raw`` subfolder. Also searched: the ``SKLEARN_CNN_DATA``
        environment variable, ``~/sklearn_cnn_data`` and ``/usr/share/datasets/
        fashion-mnist`` (Debian: ``apt-get install dataset-fashion-mnist``).
    return_X_y : bool, default=False
    download : bool, default=False
        If the files are not found, fetch them with ``torchvision.datasets.
        FashionMNIST`` into ``data_home`` (default: ``SKLEARN_CNN_DATA`` or
        ``~/sklearn_cnn_data``). Needs ``pip install 'sklearn-cnn[torch]'``.

    Returns
    -------
    Bunch with ``data`` (n, 1, 28, 28) float32 in [0, 1], ``target`` (n,) int64,
    ``target_names``; or ``(data, target)`` if ``return_X_y``.
    """
    return _load_idx_pair(subset, data_home, [DEBIAN_FASHION_MNIST], return_X_y,
                          FASHION_MNIST_CLASSES, FASHION_MNIST_DESCR, download,
                          "FashionMNIST")


def load_mnist(*, subset: str = "train", data_home: str | os.PathLike | None = None,
               return_X_y: bool = False, download: bool = False):
    """MNIST handwritten digits from IDX files; same conventions as
    :func:`load_fashion_mnist` (torchvision's subfolder is ``MNIST/raw``; no Debian
    folder)."""
    return _load_idx_pair(subset, data_home, [], return_X_y, [str(i) for i in range(10)],
                          MNIST_DESCR, download, "MNIST")


def load_cifar10(*, subset: str = "train", data_home: str | os.PathLike | None = None,
                 return_X_y: bool = False, download: bool = False):
    """CIFAR-10: 32x32 colour images of 10 classes (airplane ... truck).

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        50,000 training images (``data_batch_1`` to ``data_batch_5``, in that order)
        or 10,000 test images (``test_batch``).
    data_home : str or path, default=None
        Folder holding the batch files of the "CIFAR-10 python version", directly or
        in its ``cifar-10-batches-py`` subfolder (as the archive unpacks). Also
        searched: the ``SKLEARN_CNN_DATA`` environment variable and
        ``~/sklearn_cnn_data``.
    return_X_y : bool, default=False
    download : bool, default=False
        If the files are not found, fetch them with ``torchvision.datasets.CIFAR10``
        into ``data_home`` (default: ``SKLEARN_CNN_DATA`` or ``~/sklearn_cnn_data``).
        Needs ``pip install 'sklearn-cnn[torch]'``.

    Returns
    -------
    Bunch with ``data`` (n, 3, 32, 32) float32 in [0, 1], ``target`` (n,) int64,
    ``target_names``; or ``(data, target)`` if ``return_X_y``.

    Raises
    ------
    ValueError
        If a batch file is truncated, corrupt or names any Python object besides
        numpy arrays (see :func:`read_cifar10_batch`).
    """
    _check_subset(subset)
    paths = _find_all(_CIFAR10_FILES[subset], data_home, [], (_CIFAR10_DIR,),
                      "CIFAR-10 batch files", download, "CIFAR10")
    batches = [read_cifar10_batch(path) for path in paths]
    data = np.concatenate([d for d, _ in batches])
    y = np.concatenate([labels for _, labels in batches])
    X = data.reshape(-1, 3, _CIFAR10_SIDE, _CIFAR10_SIDE).astype(np.float32)
    X /= np.float32(255)
    return _bunch(X, y, return_X_y, CIFAR10_CLASSES, CIFAR10_DESCR)


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


def make_rotation_task(images, *, max_degrees: float = 40.0, random_state=None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """An image regression task from any images: rotate each by a random angle in
    ``[-max_degrees, max_degrees]`` and make the angle its target.

    The benchmark of :class:`~sklearn_cnn.CNNRegressor` (the documentation's
    benchmarks page) is this task on Fashion-MNIST.

    Parameters
    ----------
    images : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        uint8 images are scaled to [0, 1] first, as the estimators scale them.
    max_degrees : float, default=40.0
    random_state : int, RandomState instance or None, default=None
    lazy : bool, default=False
        ``data`` as :class:`~sklearn_cnn.preprocessing.LazyImages`, which decodes
        only the files a batch asks for: for folders larger than memory (see
        ``ImageLoader(lazy=True)``).

    Returns
    -------
    X : ndarray of shape (n_samples, C, H, W), float32
        The rotated images (clockwise for positive angles; bilinear, zeros
        outside).
    y : ndarray of shape (n_samples,)
        The angles, in degrees.

    Examples
    --------
    >>> X, y = make_rotation_task(load_digits_images().data[:5], random_state=0)
    >>> X.shape, bool(abs(y).max() <= 40)
    ((5, 1, 8, 8), True)
    """
    from sklearn.utils import check_random_state

    from ._input import to_images
    from .augment import rotate

    if not (isinstance(max_degrees, (int, float, np.number)) and 0 <= max_degrees <= 180):
        raise ValueError(f"max_degrees must be a number in [0, 180], got {max_degrees!r}")
    X = to_images(images, dtype=np.float32)
    angles = check_random_state(random_state).uniform(-max_degrees, max_degrees, len(X))
    return rotate(X, angles), angles


def load_image_folder(path: str | os.PathLike, *, size=None, mode: str = "auto",
                      resize: str = "stretch", load_content: bool = True,
                      on_error: str = "raise", shuffle: bool = False,
                      random_state=None, lazy: bool = False) -> Bunch:
    """Images in a folder with one sub-folder per class, as
    :func:`sklearn.datasets.load_files` reads text.

    ``path/cat/1.png``, ``path/dog/7.jpg``...: each sub-folder (sorted by name) is a
    class; files whose ending is not an image's (``preprocessing.IMAGE_SUFFIXES``)
    and hidden files are skipped. Reading needs Pillow (``pip install
    'sklearn-cnn[images]'``).

    Parameters
    ----------
    path : str or path-like
        The folder.
    size, mode, resize
        As :class:`sklearn_cnn.preprocessing.ImageLoader`, which reads the files.
    load_content : bool, default=True
        Read the images into ``data``; False lists the files only (``filenames`` then
        go straight into a pipeline that starts with an ``ImageLoader``).
    on_error : {"raise", "warn"}, default="raise"
        A file that cannot be read as an image raises a ValueError naming it, or
        (``"warn"``) is left out with a warning naming it.
    shuffle : bool, default=False
        Shuffle the samples (seeded by ``random_state``).
    random_state : int, RandomState instance or None, default=None
    lazy : bool, default=False
        ``data`` as :class:`~sklearn_cnn.preprocessing.LazyImages`, which decodes
        only the files a batch asks for: for folders larger than memory (see
        ``ImageLoader(lazy=True)``).

    Returns
    -------
    Bunch
        ``filenames`` (ndarray of str), ``target`` (class indices), ``target_names``
        (the sub-folder names), ``data`` ((n, C, H, W) float32 in [0, 1], when
        ``load_content``) and ``DESCR`` (which says the size the images were read
        at, and how it was chosen).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for label in ("circle", "square"):
    ...     os.makedirs(os.path.join(root, label))
    ...     for i in range(2):
    ...         image = Image.fromarray(np.zeros((12, 12), dtype=np.uint8))
    ...         image.save(os.path.join(root, label, f"{i}.png"))
    >>> bunch = load_image_folder(root)
    >>> bunch.data.shape, bunch.target.tolist(), bunch.target_names
    ((4, 1, 12, 12), [0, 0, 1, 1], ['circle', 'square'])
    """
    import warnings

    from sklearn.utils import check_random_state

    from .preprocessing import IMAGE_SUFFIXES, ImageLoader, open_image

    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{str(os.fspath(path))!r} is not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files, target = [], []
    for index, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            # a link whose target is gone counts too: on_error decides, never silence
            if ((file.is_file() or file.is_symlink()) and not file.name.startswith(".")
                    and file.suffix.lower() in IMAGE_SUFFIXES):
                files.append(str(file))
                target.append(index)
    if not files:
        raise ValueError(f"{str(os.fspath(path))!r} holds no image files in sub-folders (one "
                         f"sub-folder per class, files ending in {', '.join(IMAGE_SUFFIXES)})")
    if on_error == "warn":
        readable = []
        for file in files:
            try:
                open_image(file)
                readable.append(True)
            except ValueError as exc:
                warnings.warn(f"skipped: {exc}", UserWarning, stacklevel=2)
                readable.append(False)
        files = [f for f, ok in zip(files, readable, strict=True) if ok]
        target = [t for t, ok in zip(target, readable, strict=True) if ok]
        if not files:
            raise ValueError(f"none of the {len(readable)} image files in "
                             f"{str(os.fspath(path))!r} could be read (the warnings say why)")
    filenames, target = np.array(files, dtype=str), np.array(target, dtype=np.int64)
    if shuffle:
        order = check_random_state(random_state).permutation(len(filenames))
        filenames, target = filenames[order], target[order]
    bunch = Bunch(filenames=filenames, target=target, target_names=classes,
                  DESCR=f"Images in {os.fspath(path)}: {len(filenames)} files in "
                        f"{len(classes)} classes (one sub-folder each).")
    if load_content:
        loader = ImageLoader(size=size, mode=mode, resize=resize, lazy=lazy)
        bunch.data = loader.fit_transform(list(filenames))
        bunch.DESCR += f" Read as {loader.mode_} images of {loader.size_note_}."
    return bunch
