"""The model file's format (_format.py): layout, checksum, atomic write, old formats."""

import pickle
import zipfile

import numpy as np
import pytest
from model_files import rewrite, tiny_model, write_with_checksum

from sklearn_cnn import CNNRegressor, load
from sklearn_cnn._format import (
    _typed,
    checksum,
    is_model_file,
    params_from_json,
    params_to_json,
    read_model,
    read_weights,
    spec_from_json,
    spec_to_json,
    write_atomically,
)
from sklearn_cnn.layers import (
    BatchNorm,
    Conv2d,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
)


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


@pytest.fixture
def saved(tiny, tmp_path):
    clf, X = tiny
    path = tmp_path / "model.npz"
    clf.save(path)
    return clf, X, path


# -- checksum -----------------------------------------------------------------------

def test_checksum_covers_the_description_and_every_arrays_name_type_shape_and_bytes():
    meta = b'{"format": "x"}'
    arrays = {"a": np.arange(6, dtype=np.float32), "b": np.ones((2, 2))}
    digest = checksum(meta, arrays)
    assert digest.dtype == np.uint8 and digest.shape == (32,)  # SHA-256
    np.testing.assert_array_equal(checksum(meta, dict(reversed(arrays.items()))), digest)
    changed = [
        (b'{"format": "y"}', arrays),
        (meta, {**arrays, "a": np.arange(6, dtype=np.float64)}),  # another dtype
        (meta, {**arrays, "a": np.arange(6, dtype=np.float32).reshape(2, 3)}),  # shape
        (meta, {**arrays, "a": np.arange(1, 7, dtype=np.float32)}),  # a value
        (meta, {"c": arrays["a"], "b": arrays["b"]}),  # a name
        (meta, {"a": arrays["a"]}),  # an array fewer
    ]
    for other_meta, other_arrays in changed:
        assert not np.array_equal(checksum(other_meta, other_arrays), digest)


# -- what is refused ----------------------------------------------------------------

def test_damaged_and_foreign_files_are_refused(saved, tmp_path):
    clf, _, good = saved
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


def test_descriptions_that_are_not_a_model_files_are_refused(saved, tmp_path):
    _, _, good = saved
    with np.load(good) as archive:
        arrays = {k: archive[k] for k in archive.files if k not in ("meta", "checksum")}
    for name, meta, message in [
        ("other-format.npz", {"format": "sklearn-cnn/99"}, "is not a sklearn-cnn/4 model file"),
        ("no-format.npz", {"estimator": "CNNClassifier"}, "is not a sklearn-cnn/4 model file"),
        ("list.npz", ["format"], "description is not a JSON object"),
    ]:
        write_with_checksum(tmp_path / name, meta, arrays)
        with pytest.raises(ValueError, match=message) as error:
            read_model(tmp_path / name)
        assert name in str(error.value)
    np.savez(tmp_path / "no-meta.npz", **arrays)
    with pytest.raises(ValueError, match="not a readable sklearn-cnn model file"):
        read_model(tmp_path / "no-meta.npz")
    np.savez(tmp_path / "not-json.npz", meta=np.frombuffer(b"\xff{", dtype=np.uint8))
    with pytest.raises(ValueError, match="not a readable sklearn-cnn model file"):
        read_model(tmp_path / "not-json.npz")
    with pytest.raises(FileNotFoundError):
        read_model(tmp_path / "nowhere.npz")


def test_every_flipped_byte_and_every_truncation_is_refused_or_harmless(saved, tmp_path):
    """Fault injection: each single-byte change and each truncation of a model file
    either loads a model that predicts identically or is refused with ValueError."""
    clf, X, path = saved
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


# -- writing ------------------------------------------------------------------------

@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"),
                                     KeyboardInterrupt()], ids=["disk full", "Ctrl-C"])
def test_a_save_that_fails_half_way_keeps_the_old_file(saved, monkeypatch, failure):
    clf, _, path = saved
    before = path.read_bytes()

    def half_a_file(file, **arrays):
        file.write(b"PK\x03\x04 half a file")
        raise failure

    monkeypatch.setattr(np, "savez", half_a_file)
    with pytest.raises(type(failure)):
        clf.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]  # no temp files


def test_write_atomically_replaces_the_file_in_one_step(tmp_path):
    path = tmp_path / "arrays.npz"
    path.write_bytes(b"old")
    write_atomically(path, {"a": np.arange(3)})
    with np.load(path) as archive:
        np.testing.assert_array_equal(archive["a"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


# -- reading ------------------------------------------------------------------------

def test_is_model_file_reads_the_layout_only(saved, tmp_path):
    _, _, path = saved
    assert is_model_file(path) and is_model_file(str(path))
    np.savez(tmp_path / "arrays.npz", weights=np.zeros(3))
    (tmp_path / "weights.pth").write_bytes(b"\x80\x02 a torch pickle")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 3])
    for other in ("arrays.npz", "weights.pth", "cut.npz", "nowhere.npz"):
        assert not is_model_file(tmp_path / other), other
    (tmp_path / "flipped.npz").write_bytes(data.replace(b"0.weight", b"0.weighs"))
    assert is_model_file(tmp_path / "flipped.npz")  # laid out as one, though damaged
    with pytest.raises(ValueError, match="do not match the checksum"):
        read_weights(tmp_path / "flipped.npz")


def test_read_weights_gives_the_canonical_weights(saved):
    clf, _, path = saved
    weights = read_weights(path)
    assert weights.keys() == clf.get_weights().keys()
    for key, value in clf.get_weights().items():
        np.testing.assert_array_equal(weights[key], value, err_msg=key)


# -- parameters and specs as JSON ---------------------------------------------------

def test_specs_and_parameters_survive_json():
    import json

    arch = [Conv2d(4, (3, 2), stride=(1, 2), padding=(1, 0, 2, 1), bias=False),
            BatchNorm(eps=1e-3), ReLU(), MaxPool2d(3, stride=2, padding=1),
            Residual((Conv2d(4, 3, padding=1), BatchNorm()), (Conv2d(4, 1),)),
            GlobalAvgPool2d(), Linear(3)]
    for spec in arch:
        assert spec_from_json(json.loads(json.dumps(spec_to_json(spec)))) == spec
    params = {"arch": arch, "filters": (4, 8), "hidden_units": (16,), "input_shape": None,
              "class_weight": {np.int64(0): np.float32(2.0), "b": 1.5},
              "learning_rate_init": np.float32(0.5), "max_iter": np.int64(3)}
    restored = params_from_json(json.loads(json.dumps(params_to_json(params))))
    assert restored == {**params, "class_weight": {0: 2.0, "b": 1.5}}
    assert type(restored["max_iter"]) is int and type(restored["filters"]) is tuple
    assert params_to_json({"init_from": object()}) == {"init_from": None}
    for unsaveable in (lambda batch: batch, np.random.RandomState(0)):
        with pytest.raises(ValueError, match="cannot be saved as data"):
            params_to_json({"augment": unsaveable})
    with pytest.raises(ValueError, match="unknown layer type"):
        spec_from_json({"type": "Transformer"})


def test_object_arrays_are_stored_typed_or_refused():
    for values in (["cat", "dog"], [True, False], [1, 2.5]):
        typed, was_object = _typed("classes_", np.array(values, dtype=object))
        assert was_object and typed.dtype != object and typed.tolist() == values
    plain = np.arange(3)
    typed, was_object = _typed("classes_", plain)
    assert typed is plain and not was_object
    with pytest.raises(ValueError, match=r"classes_ \[1, 'a'\] mixes value types"):
        _typed("classes_", np.array([1, "a"], dtype=object))


# -- files of the earlier formats ---------------------------------------------------

def old_file(estimator, path, version, *, object_classes=False, feature_names=None):
    """The file ``sklearn-cnn/<version>`` wrote for ``estimator``, laid out by hand as
    that format was: the network's description at the top level of ``meta``, the
    training record as ``loss_curve``, ``n_iter`` and ``t``; /3 named its target
    attributes (``targets`` and ``targets/<name>`` arrays), /1 and /2 knew classifiers
    only and stored ``classes``; /1 had no checksum. Parameters of later releases are
    missing, as they were."""
    network = estimator.network_
    meta = {
        "format": f"sklearn-cnn/{version}",
        "params": {"arch": {"specs": [spec_to_json(s) for s in network.specs]}, "max_iter": 1,
                   "random_state": 0, "augment": None},
        "specs": [spec_to_json(s) for s in network.specs], "notes": network.notes,
        "input_shape": list(network.input_shape), "dtype": str(network.dtype),
        "backend": network.backend_name,
        "loss_curve": estimator.loss_curve_, "n_iter": estimator.n_iter_,
        "t": estimator.t_, "feature_names": feature_names, "object_classes": object_classes,
    }
    arrays = {f"weights/{k}": v for k, v in estimator.get_weights().items()}
    classes = getattr(estimator, "classes_", None)
    if object_classes:  # stored typed, as strings
        classes = np.asarray(classes.tolist())
    if version == 3:
        meta["estimator"] = type(estimator).__name__
        if isinstance(estimator, CNNRegressor):
            meta["targets"] = {"n_outputs_": estimator.n_outputs_,
                               "_target_ndim": estimator._target_ndim}
            arrays["targets/target_mean_"] = estimator.target_mean_
            arrays["targets/target_scale_"] = estimator.target_scale_
        else:
            meta["targets"] = {}
            arrays["targets/classes_"] = classes
    else:
        arrays["classes"] = classes
    write_with_checksum(path, meta, arrays, checksum=None if version > 1 else False)


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_classifier_files_of_earlier_formats_load(version, tmp_path):
    labels = np.array(["cat", "dog"] * 20, dtype=object)
    clf, X = tiny_model(labels)
    names = [f"pixel{i}" for i in range(16)]
    old_file(clf, tmp_path / "old.npz", version, object_classes=True, feature_names=names)
    restored = load(tmp_path / "old.npz")
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.classes_.dtype == object and restored.classes_.tolist() == ["cat", "dog"]
    assert restored.feature_names_in_.tolist() == names
    assert restored.feature_names_in_.dtype == object
    assert (restored.loss_curve_, restored.n_iter_, restored.t_) == (
        clf.loss_curve_, clf.n_iter_, clf.t_)
    assert restored.best_loss_ == min(clf.loss_curve_) and restored.n_features_in_ == 16
    assert restored.validation_scores_ is None and restored.best_validation_score_ is None
    assert restored.specs_ == clf.specs_ and restored.get_params()["max_iter"] == 1
    assert restored.get_params()["learning_rate"] == "onecycle"  # not in the file: default
    meta, _ = read_model(tmp_path / "old.npz")
    assert meta["format"] == "sklearn-cnn/4"  # read as this format's layout


def test_regressor_files_of_format_3_load(tmp_path):
    X = np.random.default_rng(0).random((30, 1, 6, 6)).astype(np.float32)
    Y = np.c_[X.mean(axis=(1, 2, 3)), X[:, 0, 0, 0]]
    reg = CNNRegressor([Conv2d(2, 3), ReLU(), GlobalAvgPool2d(), Linear(2)], max_iter=1,
                       augment=None, random_state=0).fit(X, Y)
    old_file(reg, tmp_path / "old.npz", 3)
    restored = load(tmp_path / "old.npz")
    assert type(restored) is CNNRegressor and restored.n_outputs_ == 2
    np.testing.assert_array_equal(restored.predict(X), reg.predict(X))
    assert restored.predict(X[:3]).shape == (3, 2)


def test_a_damaged_description_of_an_earlier_format_is_refused(tiny, tmp_path):
    clf, _ = tiny
    old_file(clf, tmp_path / "old.npz", 3)

    def forget_the_epochs(arrays, meta):
        del meta["n_iter"]

    rewrite(tmp_path / "old.npz", tmp_path / "damaged.npz", forget_the_epochs)
    with pytest.raises(ValueError, match=r"damaged\.npz has a damaged model description: "
                                         r"KeyError\('n_iter'\)"):
        read_model(tmp_path / "damaged.npz")


def test_a_missing_folder_is_named_not_the_temporary_file(tmp_path):
    from sklearn_cnn._format import write_atomically

    target = tmp_path / "missing" / "m.npz"
    with pytest.raises(FileNotFoundError, match=r"folder .*missing' does not exist"):
        write_atomically(target, {"a": np.zeros(2)})
