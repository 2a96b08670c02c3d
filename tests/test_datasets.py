"""IDX loading on small files written here (nothing is downloaded)."""

import gzip
import struct

import numpy as np
import pytest

from sklearn_cnn.datasets import load_digits_images, load_fashion_mnist, load_mnist, read_idx


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)
    return data


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = np.array([3, 1, 4, 1, 5])
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    return tmp_path, images, labels


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


def test_missing_files_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("SKLEARN_CNN_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.*looked in"):
        load_mnist(subset="test", data_home=tmp_path)
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
