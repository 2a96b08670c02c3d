"""Dataset loading on small files written here (nothing is downloaded)."""

import gzip
import os
import pickle
import struct
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from sklearn_cnn import datasets
from sklearn_cnn.datasets import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_digits_images,
    load_fashion_mnist,
    load_image_folder,
    load_mnist,
    read_cifar10_batch,
    read_idx,
)


@pytest.fixture(autouse=True)
def no_default_data(tmp_path_factory, monkeypatch):
    """Keep the machine's own data folders out of every test."""
    monkeypatch.delenv("SKLEARN_CNN_DATA", raising=False)
    empty = tmp_path_factory.mktemp("empty")
    monkeypatch.setattr(datasets, "DEFAULT_DATA_HOME", empty / "sklearn_cnn_data")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", empty / "fashion-mnist")


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)
    return data


def write_cifar_batch(path, data, labels, protocol=pickle.DEFAULT_PROTOCOL):
    batch = {b"batch_label": b"a tiny batch", b"labels": list(map(int, labels)),
             b"data": np.asarray(data, dtype=np.uint8), b"filenames": [b"x.png"] * len(labels)}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


def python2_cifar_pickle(data, labels):
    """A batch as Python 2's cPickle wrote the real files: protocol 2, byte strings,
    numpy 1.x's ``numpy.core.multiarray._reconstruct``."""
    def string(b):
        return b"T" + struct.pack("<i", len(b)) + b  # BINSTRING

    def integer(i):
        return b"J" + struct.pack("<i", i)  # BININT

    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
             + integer(0) + b"\x85" + string(b"b") + b"\x87R"
             + b"(" + integer(1) + integer(data.shape[0]) + integer(data.shape[1]) + b"\x86"
             + b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
             + b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1)
             + integer(0) + b"tb" + b"\x89" + string(data.astype(np.uint8).tobytes())
             + b"tb")
    label_list = b"](" + b"".join(integer(int(v)) for v in labels) + b"e"
    return (b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list
            + b"u.")


def random_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = np.array([3, 1, 4, 1, 5])
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    return tmp_path, images, labels


@pytest.fixture
def cifar_folder(tmp_path):
    """cifar-10-batches-py/ with five 2-image training batches and a 3-image test batch."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        n = 3 if name == "test_batch" else 2
        data, labels = random_images(n, i), (np.arange(n) + i) % 10
        write_cifar_batch(folder / name, data, labels)
        batches[name] = (data, labels)
    return tmp_path, batches


def test_load_from_data_home_raw_and_gzip(idx_folder):
    folder, images, labels = idx_folder
    bunch = load_fashion_mnist(data_home=folder)
    assert bunch.data.shape == (5, 1, 28, 28) and bunch.data.dtype == np.float32
    np.testing.assert_allclose(bunch.data[:, 0] * 255, images, atol=1e-4)
    np.testing.assert_array_equal(bunch.target, labels)
    assert bunch.target_names[0] == "T-shirt/top"


def test_environment_variable_is_searched(idx_folder, monkeypatch):
    folder, _, labels = idx_folder
    monkeypatch.setenv("SKLEARN_CNN_DATA", str(folder))
    _, y = load_mnist(return_X_y=True)
    np.testing.assert_array_equal(y, labels)


def test_missing_files_say_where_they_were_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.*looked in") as info:
        load_mnist(subset="test", data_home=tmp_path)
    assert str(tmp_path) in str(info.value) and "download=True" in str(info.value)
    with pytest.raises(ValueError, match="subset"):
        load_mnist(subset="validation", data_home=tmp_path)


def test_corrupt_files_are_refused(tmp_path):
    good = write_idx(tmp_path / "a", np.zeros((3, 4, 4)))
    (tmp_path / "truncated").write_bytes(good[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "truncated")
    (tmp_path / "magic").write_bytes(b"\x1f\x00" + good[2:])
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "magic")
    (tmp_path / "long").write_bytes(good + b"\x00")
    with pytest.raises(ValueError, match="corrupt"):
        read_idx(tmp_path / "long")


def test_digits_images():
    bunch = load_digits_images()
    assert bunch.data.shape == (1797, 1, 8, 8) and bunch.data.max() == 1.0


# --- CIFAR-10 --------------------------------------------------------------------

def test_cifar10_train_concatenates_the_five_batches_and_test_reads_test_batch(cifar_folder):
    home, batches = cifar_folder
    bunch = load_cifar10(data_home=home)
    train = [batches[f"data_batch_{k}"] for k in range(1, 6)]
    assert bunch.data.shape == (10, 3, 32, 32) and bunch.data.dtype == np.float32
    assert bunch.target.dtype == np.int64 and bunch.target_names == CIFAR10_CLASSES
    expected = np.concatenate([d for d, _ in train]).reshape(10, 3, 32, 32)
    np.testing.assert_allclose(bunch.data * 255, expected, atol=1e-4)
    np.testing.assert_array_equal(bunch.target, np.concatenate([y for _, y in train]))
    assert 0.0 <= bunch.data.min() and bunch.data.max() <= 1.0
    # the folder itself works as data_home, as does the environment variable
    X, y = load_cifar10(subset="test", data_home=home / "cifar-10-batches-py",
                        return_X_y=True)
    np.testing.assert_array_equal(y, batches["test_batch"][1])
    np.testing.assert_allclose(X.reshape(3, -1) * 255, batches["test_batch"][0], atol=1e-4)


def test_cifar10_channels_are_red_green_blue_planes(tmp_path, monkeypatch):
    data = np.zeros((1, 3072), np.uint8)
    data[0, :1024], data[0, 1024:2048], data[0, 2048:] = 255, 0, 51  # a purple image
    data[0, 1] = 0  # red plane, row 0, column 1
    write_cifar_batch(tmp_path / "test_batch", data, [7])
    monkeypatch.setenv("SKLEARN_CNN_DATA", str(tmp_path))
    X, y = load_cifar10(subset="test", return_X_y=True)
    assert X.shape == (1, 3, 32, 32) and y.tolist() == [7]
    np.testing.assert_allclose(X[0, :, 5, 5], [1.0, 0.0, 0.2])
    assert X[0, 0, 0, 1] == 0.0 and X[0, 0, 1, 0] == 1.0


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar10_batches_of_every_pickle_protocol_are_read(tmp_path, protocol):
    data = random_images(4, 1)
    write_cifar_batch(tmp_path / "b", data, [0, 9, 2, 3], protocol=protocol)
    read_data, labels = read_cifar10_batch(tmp_path / "b")
    np.testing.assert_array_equal(read_data, data)
    assert labels.tolist() == [0, 9, 2, 3] and labels.dtype == np.int64


def test_cifar10_batch_written_by_python2_is_read(tmp_path):
    data = random_images(3, 2)
    (tmp_path / "b").write_bytes(python2_cifar_pickle(data, [5, 0, 9]))
    read_data, labels = read_cifar10_batch(tmp_path / "b")
    np.testing.assert_array_equal(read_data, data)
    assert labels.tolist() == [5, 0, 9]


def test_cifar10_subset_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="subset must be 'train' or 'test'"):
        load_cifar10(subset="validation", data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data_batch_1\[\.gz\] not found; looked in") \
            as info:
        load_cifar10(data_home=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "sklearn_cnn_data" in message
    assert "cifar-10-batches-py" in message and "download=True" in message


def test_cifar10_truncated_or_corrupt_batch_is_a_value_error(tmp_path):
    write_cifar_batch(tmp_path / "good", random_images(2, 0), [1, 2])
    good = (tmp_path / "good").read_bytes()
    for name, content in [("truncated", good[: len(good) // 2]), ("empty", b""),
                          ("garbage", b"\x80\x04not a pickle at all"),
                          ("text", b"data,labels\n1,2\n")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
            read_cifar10_batch(tmp_path / name)


@pytest.mark.parametrize("batch, message", [
    ([1, 2, 3], "not a dict"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "labels"),
    ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}, r"shape \(n, 3072\)"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8"),
    ({b"data": [[0] * 3072] * 2, b"labels": [0, 1]}, "uint8"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 integer labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"0\.\.9"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, -1]}, r"0\.\.9"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.5, 1.0]}, "integer labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": b"\x00\x01"}, "list of ints"),
])
def test_cifar10_batch_of_the_wrong_form_is_refused(tmp_path, batch, message):
    with open(tmp_path / "b", "wb") as f:
        pickle.dump(batch, f)
    with pytest.raises(ValueError, match=message):
        read_cifar10_batch(tmp_path / "b")


class _GetCwd:
    def __reduce__(self):
        return (os.getcwd, ())


class _MakeDir:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_cifar10_pickle_naming_other_globals_is_refused_without_running_it(tmp_path):
    with open(tmp_path / "getcwd", "wb") as f:
        pickle.dump({b"data": _GetCwd(), b"labels": [1]}, f)
    with pytest.raises(ValueError, match=r"not a CIFAR-10 batch.*getcwd"):
        read_cifar10_batch(tmp_path / "getcwd")

    victim = tmp_path / "created-by-the-pickle"
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": random_images(1, 0), b"labels": [_MakeDir(str(victim))]}, f)
    with pytest.raises(ValueError, match=r"mkdir.*refused without running it"):
        load_cifar10(subset="test", data_home=tmp_path)
    assert not victim.exists()
    # an allowed module with a name outside the list is refused too
    with open(tmp_path / "numpy", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [np.int64(1)]}, f)
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        read_cifar10_batch(tmp_path / "numpy")


# --- download=True, with a fake torchvision (never the network) --------------------

class _FakeTorchvisionDataset:
    """Writes tiny files where the torchvision class of the same name would."""

    calls: ClassVar[list] = []

    def __init__(self, root, train=True, download=False):
        assert download is True
        type(self).calls.append((type(self).__name__, root, train))
        self.write(root)


class MNIST(_FakeTorchvisionDataset):
    labels = np.array([7, 2, 1])

    def write(self, root):
        raw = os.path.join(root, type(self).__name__, "raw")
        os.makedirs(raw, exist_ok=True)
        for subset in ("train", "t10k"):
            images = np.full((3, 28, 28), 255 if subset == "train" else 0)
            write_idx(os.path.join(raw, f"{subset}-images-idx3-ubyte.gz"), images, gz=True)
            write_idx(os.path.join(raw, f"{subset}-images-idx3-ubyte"), images)
            write_idx(os.path.join(raw, f"{subset}-labels-idx1-ubyte"), self.labels)


class FashionMNIST(MNIST):
    labels = np.array([9, 0, 0])


class CIFAR10(_FakeTorchvisionDataset):
    def write(self, root):
        folder = os.path.join(root, "cifar-10-batches-py")
        os.makedirs(folder, exist_ok=True)
        for k in range(1, 6):
            write_cifar_batch(os.path.join(folder, f"data_batch_{k}"),
                              random_images(1, k), [k])
        write_cifar_batch(os.path.join(folder, "test_batch"), random_images(2, 0), [0, 9])


@pytest.fixture
def fake_torchvision(monkeypatch):
    package = types.ModuleType("torchvision")
    package.datasets = types.ModuleType("torchvision.datasets")
    for cls in (MNIST, FashionMNIST, CIFAR10):
        setattr(package.datasets, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", package.datasets)
    monkeypatch.setattr(_FakeTorchvisionDataset, "calls", [])
    return _FakeTorchvisionDataset.calls


@pytest.mark.parametrize("loader, folder, labels", [
    (load_mnist, "MNIST", [7, 2, 1]), (load_fashion_mnist, "FashionMNIST", [9, 0, 0])])
def test_download_fetches_idx_files_with_torchvision_then_reads_them(
        tmp_path, fake_torchvision, loader, folder, labels):
    X, y = loader(data_home=tmp_path, download=True, return_X_y=True)
    assert fake_torchvision == [(folder, str(tmp_path), True)]
    assert X.shape == (3, 1, 28, 28) and X.dtype == np.float32 and np.all(X == 1.0)
    assert y.tolist() == labels and y.dtype == np.int64
    # the files are found now: no second download, with or without download=True
    X_test, _ = loader(subset="test", data_home=tmp_path, download=True, return_X_y=True)
    assert np.all(X_test == 0.0)
    loader(subset="test", data_home=tmp_path / folder / "raw")
    assert len(fake_torchvision) == 1


def test_download_of_cifar10_goes_to_the_default_data_home(
        tmp_path, fake_torchvision, monkeypatch):
    home = tmp_path / "default-home"
    monkeypatch.setattr(datasets, "DEFAULT_DATA_HOME", home)
    bunch = load_cifar10(download=True)
    assert fake_torchvision == [("CIFAR10", str(home), True)]
    assert bunch.data.shape == (5, 3, 32, 32) and bunch.target.tolist() == [1, 2, 3, 4, 5]
    assert load_cifar10(subset="test").target.tolist() == [0, 9]  # found where it went
    monkeypatch.setenv("SKLEARN_CNN_DATA", str(tmp_path / "from-env"))
    load_cifar10(subset="test", download=True)  # already found in the default home
    assert len(fake_torchvision) == 1
    assert datasets.get_data_home() == tmp_path / "from-env"


def test_download_without_torchvision_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cnn\[torch\]'"):
        load_cifar10(data_home=tmp_path, download=True)
    with pytest.raises(ImportError, match="torchvision"):
        load_fashion_mnist(data_home=tmp_path, download=True)


@pytest.mark.parametrize("encoding", [b"rot13", b"utf-16", b"no-such-codec"])
def test_cifar10_pickle_may_encode_bytes_as_latin1_only(tmp_path, encoding):
    call = (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX" + struct.pack("<I", len(encoding))
            + encoding + b"\x86R.")
    (tmp_path / "b").write_bytes(call)
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        read_cifar10_batch(tmp_path / "b")


def _image_folder(root):
    from PIL import Image

    for label, value in (("bright", 220), ("dark", 30)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((9, 7), value, dtype=np.uint8)).save(
                root / label / f"{i}.png")
        (root / label / "notes.txt").write_text("not an image")
        (root / label / ".hidden.png").write_bytes(b"")
    return root


def test_load_image_folder_reads_one_class_per_sub_folder(tmp_path):
    pytest.importorskip("PIL")
    from sklearn_cnn.datasets import load_image_folder

    bunch = load_image_folder(_image_folder(tmp_path / "images"))
    assert bunch.target_names == ["bright", "dark"]
    assert bunch.data.shape == (6, 1, 9, 7) and bunch.target.tolist() == [0, 0, 0, 1, 1, 1]
    assert [Path(f).name for f in bunch.filenames] == ["0.png", "1.png", "2.png"] * 2
    np.testing.assert_allclose(bunch.data[bunch.target == 0], 220 / 255, rtol=1e-6)
    listed = load_image_folder(tmp_path / "images", load_content=False, shuffle=True,
                               random_state=0)
    assert "data" not in listed and sorted(listed.filenames) == sorted(bunch.filenames)
    resized = load_image_folder(tmp_path / "images", size=4, mode="RGB")
    assert resized.data.shape == (6, 3, 4, 4)


def test_load_image_folder_names_a_corrupt_file_or_skips_it_when_told(tmp_path):
    pytest.importorskip("PIL")
    from sklearn_cnn.datasets import load_image_folder

    root = _image_folder(tmp_path / "images")
    (root / "dark" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg.*cannot be read"):
        load_image_folder(root)
    with pytest.warns(UserWarning, match=r"skipped: .*broken\.jpg"):
        bunch = load_image_folder(root, on_error="warn")
    assert len(bunch.filenames) == 6
    with pytest.raises(ValueError, match="is not a folder"):
        load_image_folder(root / "dark" / "0.png")
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path / "images" / "dark")


def test_make_rotation_task_rotates_by_the_target():
    images = np.zeros((30, 9, 9), dtype=np.uint8)
    images[:, 0, 4] = 255  # a dot at the top centre
    X, y = datasets.make_rotation_task(images, max_degrees=90, random_state=0)
    assert X.shape == (30, 1, 9, 9) and X.dtype == np.float32 and y.shape == (30,)
    assert np.abs(y).max() <= 90 and np.ptp(y) > 90
    X_again, y_again = datasets.make_rotation_task(images, max_degrees=90, random_state=0)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    # the dot's column moves right for clockwise (positive) angles: sin(angle) * 4
    cols = np.indices((9, 9))[1]
    column = (X[:, 0] * cols).sum(axis=(1, 2)) / X[:, 0].sum(axis=(1, 2))
    np.testing.assert_allclose(column - 4, 4 * np.sin(np.deg2rad(y)), atol=0.35)
    with pytest.raises(ValueError, match="max_degrees"):
        datasets.make_rotation_task(images, max_degrees=-1)


def test_each_loader_describes_the_data_it_loaded(idx_folder, cifar_folder, tmp_path):
    """The bunch's DESCR is the description of its own data set, titled as sklearn's
    are (a name over a rule) and citing its source; an image folder's counts what was
    read."""
    folder, _, _ = idx_folder
    home, _ = cifar_folder
    titles = {"Fashion-MNIST": load_fashion_mnist(data_home=folder).DESCR,
              "MNIST": load_mnist(data_home=folder).DESCR,
              "CIFAR-10": load_cifar10(data_home=home).DESCR}
    for title, descr in titles.items():
        lines = descr.splitlines()
        assert lines[0] == title and lines[1] == "-" * len(title), title
        assert len(lines) > 5 and "Reference" in descr, title
    assert len(set(titles.values())) == 3
    assert "handwritten" in load_digits_images().DESCR.lower()
    pytest.importorskip("PIL")
    from sklearn_cnn.datasets import load_image_folder

    images = load_image_folder(_image_folder(tmp_path / "images"))
    assert images.DESCR == (f"Images in {tmp_path / 'images'}: 6 files in 2 classes (one "
                            "sub-folder each). Read as L images of 7x9 pixels, the size of "
                            "every training image.")


def test_a_dangling_link_is_an_unreadable_file_not_a_silent_skip(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / label / f"{i}.png")
    (tmp_path / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(ValueError, match=r"gone\.png' does not exist"):
        load_image_folder(tmp_path)
    with pytest.warns(UserWarning, match="gone.png"):
        assert len(load_image_folder(tmp_path, on_error="warn").target) == 4

def test_a_folder_of_unreadable_files_says_so(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_text("not an image")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="none of the 1 image"):
        load_image_folder(tmp_path, on_error="warn")


def test_a_folder_can_be_read_lazily(tmp_path):
    pytest.importorskip("PIL")
    from sklearn_cnn.datasets import load_image_folder
    from sklearn_cnn.preprocessing import LazyImages

    root = _image_folder(tmp_path / "images")
    lazy, eager = load_image_folder(root, lazy=True), load_image_folder(root)
    assert isinstance(lazy.data, LazyImages) and lazy.DESCR == eager.DESCR
    np.testing.assert_array_equal(np.asarray(lazy.data), eager.data)
