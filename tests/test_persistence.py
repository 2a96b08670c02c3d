"""save()/load(): model files that load without unpickling, and refuse what is not."""

import pickle
import zipfile

import numpy as np
import pytest

from sklearn_cnn import CNNClassifier, load
from sklearn_cnn.layers import BatchNorm, Conv2d, GlobalAvgPool2d, Linear, ReLU, Residual


@pytest.fixture(scope="module")
def fitted(digits):
    X, X_test, y, _ = digits
    names = np.array(list("abcdefghij"))
    arch = [Conv2d(4, 3, padding=1), BatchNorm(), ReLU(),
            Residual((Conv2d(4, 3, padding=1), BatchNorm()),), ReLU(), GlobalAvgPool2d(),
            Linear(10)]
    clf = CNNClassifier(arch, max_iter=3, filters=None, class_weight={"a": 2.0},
                        random_state=0).fit(X[:300], names[y[:300]])
    return clf, X_test


def test_round_trip_on_either_backend(fitted, backend, tmp_path):
    clf, X_test = fitted
    path = tmp_path / "model.npz"
    clf.save(path)
    restored = load(path, backend=backend)
    assert restored.backend == backend and restored.get_params()["class_weight"] == {"a": 2.0}
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    np.testing.assert_allclose(restored.predict_proba(X_test), clf.predict_proba(X_test),
                               atol=1e-5)
    assert list(restored.predict(X_test[:5])) == list(clf.predict(X_test[:5]))
    assert restored.specs_ == clf.specs_ and restored.loss_curve_ == clf.loss_curve_
    assert "Total params" in str(restored.summary())


def test_named_architecture_and_parameters_survive(digits, tmp_path):
    X, X_test, y, _ = digits
    clf = CNNClassifier("lenet", filters=(4, 8), max_iter=2, random_state=0).fit(X[:200],
                                                                             y[:200])
    clf.save(tmp_path / "lenet.npz")
    restored = load(tmp_path / "lenet.npz")
    assert restored.get_params()["filters"] == (4, 8)
    np.testing.assert_allclose(restored.predict_proba(X_test), clf.predict_proba(X_test),
                               atol=1e-6)


def test_damaged_and_foreign_files_are_refused(fitted, tmp_path):
    clf, _ = fitted
    good = tmp_path / "good.npz"
    clf.save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        load(tmp_path / "truncated.npz")
    with np.load(good) as archive:
        arrays = {k: archive[k] for k in archive.files}
    pickled = dict(arrays, meta=np.array([{"format": "x"}], dtype=object))
    np.savez(tmp_path / "pickled.npz", **pickled)
    with pytest.raises(ValueError, match="pickled objects"):
        load(tmp_path / "pickled.npz")
    wrong = {k: v for k, v in arrays.items() if not k.endswith("0.weight")}
    np.savez(tmp_path / "mismatched.npz", **wrong)
    with pytest.raises(ValueError, match="missing"):
        load(tmp_path / "mismatched.npz")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as archive:
        archive.writestr("meta.npy", b"not numpy")
    with pytest.raises(ValueError):
        load(tmp_path / "other.npz")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    with pytest.raises(ValueError):
        load(tmp_path / "model.pkl")


def test_what_cannot_be_saved_as_data(digits, tmp_path):
    X, _, y, _ = digits
    clf = CNNClassifier(augment=lambda b: b, max_iter=1).fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="cannot be saved as data"):
        clf.save(tmp_path / "m.npz")
