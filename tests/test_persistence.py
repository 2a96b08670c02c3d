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
    np.savez(tmp_path / "tampered.npz", **wrong)
    with pytest.raises(ValueError, match="do not match the checksum"):
        load(tmp_path / "tampered.npz")

    def drop_a_weight(arrays, meta):
        del arrays["weights/0.weight"]

    rewrite(good, tmp_path / "mismatched.npz", drop_a_weight)  # with a matching checksum
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


def tiny_model(labels=None):
    """A model small enough that its file can be damaged at every byte."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 4, 4)).astype(np.float32)
    y = np.arange(40) % 2 if labels is None else labels
    return CNNClassifier([Conv2d(2, 3), ReLU(), GlobalAvgPool2d(), Linear(2)], max_iter=1,
                         augment=None, random_state=0).fit(X, y), X


@pytest.mark.parametrize("kind", ["object array", "pandas Series"])
def test_string_labels_from_object_arrays_and_pandas_save_and_load(kind, tmp_path):
    labels = np.array(["cat", "dog"] * 20, dtype=object)
    if kind == "pandas Series":
        labels = pytest.importorskip("pandas").Series(labels)
    clf, X = tiny_model(labels)
    assert clf.classes_.dtype == object
    clf.save(tmp_path / "m.npz")
    restored = load(tmp_path / "m.npz")
    assert restored.classes_.dtype == object and restored.classes_.tolist() == ["cat", "dog"]
    assert all(type(c) is str for c in restored.predict(X))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))


def test_a_save_that_fails_half_way_keeps_the_old_file(tmp_path, monkeypatch):
    clf, _ = tiny_model()
    path = tmp_path / "model.npz"
    clf.save(path)
    before = path.read_bytes()

    def disk_full(file, **arrays):
        file.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space"):
        clf.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp files


def rewrite(path, target, change):
    """Write ``target`` from ``path``'s arrays after ``change(arrays)``, with a checksum
    that matches, so that only the consistency checks can refuse it."""
    import json

    from sklearn_cnn._format import checksum

    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    change(arrays, meta)
    encoded = json.dumps(meta).encode()
    arrays["meta"] = np.frombuffer(encoded, dtype=np.uint8)
    rest = {k: v for k, v in arrays.items() if k not in ("meta", "checksum")}
    arrays["checksum"] = checksum(encoded, rest)
    np.savez(target, **arrays)


def test_malformed_files_are_refused_with_a_value_error_naming_them(tmp_path):
    clf, _ = tiny_model()
    good = tmp_path / "good.npz"
    clf.save(good)
    np.save(tmp_path / "weights.npy", np.zeros(3))
    (tmp_path / "weights.npy").rename(tmp_path / "renamed.npz")
    cases = {"renamed.npz": "not a readable"}

    def three_classes(arrays, meta):
        arrays["fitted/classes_"] = np.array([0, 1, 2])

    def no_classes(arrays, meta):
        del arrays["fitted/classes_"]

    def no_dtype(arrays, meta):
        del meta["network"]["dtype"]

    def repeated_classes(arrays, meta):
        arrays["fitted/classes_"] = np.array([1, 1])

    for name, change, message in [("three.npz", three_classes, "y has 3 classes"),
                                  ("noclasses.npz", no_classes, "damaged"),
                                  ("nodtype.npz", no_dtype, "damaged"),
                                  ("repeated.npz", repeated_classes, "distinct")]:
        rewrite(good, tmp_path / name, change)
        cases[name] = message
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message) as error:
            load(tmp_path / name)
        assert name in str(error.value)


def test_every_flipped_byte_and_every_truncation_is_refused_or_harmless(tmp_path):
    """Fault injection: each single-byte change and each truncation of a model file
    either loads a model that predicts identically or is refused with ValueError."""
    clf, X = tiny_model()
    path = tmp_path / "model.npz"
    clf.save(path)
    data = path.read_bytes()
    expected = clf.predict_proba(X)
    damaged = tmp_path / "damaged.npz"
    counts = {"refused": 0, "identical": 0}
    variants = [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:] for i in range(len(data))]
    variants += [data[:length] for length in range(len(data))]
    for variant in variants:
        damaged.write_bytes(variant)
        try:
            restored = load(damaged)
        except ValueError:
            counts["refused"] += 1
            continue
        np.testing.assert_array_equal(restored.predict_proba(X), expected)
        counts["identical"] += 1
    assert sum(counts.values()) == 2 * len(data)
    assert counts["refused"] > 0.9 * len(variants)
