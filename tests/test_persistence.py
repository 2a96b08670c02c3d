"""save()/load() (persistence.py): estimators round-trip through model files, and a file
whose contents do not fit its model is refused (the format itself: test_format.py)."""

import re

import numpy as np
import pytest
from model_files import rewrite, tiny_model

from sklearn_cnn import CNNClassifier, load
from sklearn_cnn.layers import BatchNorm, Conv2d, GlobalAvgPool2d, Linear, ReLU, Residual


@pytest.fixture(scope="module")
def fitted(digits):
    X, X_test, y, _ = digits
    names = np.array(list("abcdefghij"))
    arch = [Conv2d(4, 3, padding=1), BatchNorm(), ReLU(),
            Residual((Conv2d(4, 3, padding=1), BatchNorm()),), ReLU(), GlobalAvgPool2d(),
            Linear(10)]
    clf = CNNClassifier(arch, max_iter=2, filters=None, class_weight={"a": 2.0},
                        random_state=0).fit(X[:200], names[y[:200]])
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


def test_what_cannot_be_saved_as_data(digits, tmp_path):
    X, _, y, _ = digits
    clf = CNNClassifier("lenet", width=0.25, augment=lambda b: b, max_iter=1).fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="cannot be saved as data"):
        clf.save(tmp_path / "m.npz")


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


def test_save_refuses_a_pipeline_pointing_at_skops(tmp_path):
    """sklearn_cnn.save writes the two estimators only: a pipeline (or another
    estimator) is a TypeError that names skops, its trusted types and, for a pipeline
    ending in a CNN, how to save the CNN alone; nothing is written."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    import sklearn_cnn
    from sklearn_cnn.persistence import save

    assert sklearn_cnn.save is save
    clf, X = tiny_model()
    pipeline = make_pipeline(FunctionTransformer(), clf)
    with pytest.raises(TypeError, match=re.escape(
            "save() writes a fitted CNNClassifier or CNNRegressor, not a Pipeline. Save a "
            "pipeline, or any other estimator, with skops: skops.io.dump(pipeline, path), "
            "and load it with skops.io.load(path, trusted=sklearn_cnn.persistence."
            "skops_trusted_types()); the CNN of a pipeline alone is saved with "
            "save(pipeline[-1], path)")):
        sklearn_cnn.save(pipeline, tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"not a LogisticRegression\. .*skops\.io\.dump"
                                        r"\(logisticregression, path\).*\)$"):
        save(LogisticRegression(), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []
    save(pipeline[-1], tmp_path / "m.npz")
    np.testing.assert_array_equal(load(tmp_path / "m.npz").predict(X), clf.predict(X))
