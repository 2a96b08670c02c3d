"""Bad input, as a matrix of cases x methods on every backend.

Each bad input must raise a ValueError or TypeError whose message names the
problem, before any network is built, trained or run; an unfitted estimator stays
unfitted and a fitted one keeps predicting the same probabilities, bit for bit. A
few inputs look odd but are fine (one image to predict, a column-vector y): those
must work, and give what the plain input gives. No call, good or bad, may modify
the caller's X, y or sample_weight.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from recipes import LENET
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning

from sklearn_cnn import CNNClassifier
from sklearn_cnn.backends import get_backend

METHODS = ("fit", "partial_fit", "predict", "predict_proba", "score")
WITH_Y = ("fit", "partial_fit", "score")
CLASSES = np.arange(10)


@dataclass(frozen=True)
class Raises:
    """The call must raise ``error`` (exactly a ValueError or TypeError) matching ``match``."""

    error: type
    match: str


@dataclass(frozen=True)
class Works:
    """The call must succeed, warn ``warning`` if given, and give what ``same_as`` (the
    same data in its plain form) gives: the same probabilities after fit/partial_fit,
    the same return value otherwise (the first rows, for predictions)."""

    warning: type | None = None
    match: str = ""
    same_as: Callable | None = None


@dataclass(frozen=True)
class Case:
    """``make(X, y)`` turns 100 good digits images and labels into the call's data
    (``X``, ``y``, ``sample_weight``); ``expect`` maps each method the case applies
    to onto what must happen. ``fitted_only``: bad only for a fitted network (other
    images than it was built for), so fit runs on it with ``warm_start=True`` and
    neither fit nor partial_fit runs on a fresh estimator."""

    make: Callable[[np.ndarray, np.ndarray], dict]
    expect: dict[str, Raises | Works]
    fitted_only: bool = False


def each(methods, outcome) -> dict:
    return dict.fromkeys(methods, outcome)


def with_value(X, index, value, dtype=None):
    X = X.astype(dtype or X.dtype)  # a copy
    X[index] = value
    return X


def labels_with(y, value):
    y = y.astype(np.float64)
    y[3] = value
    return y


def unchanged(X, y):
    return {"X": X, "y": y}


def dataframe(X, nan=False):
    flat = X.reshape(len(X), -1).astype(np.float64)
    if nan:
        flat[5, 7] = np.nan
    return pd.DataFrame(flat, columns=[f"pixel{i}" for i in range(flat.shape[1])])


def ragged(X):
    return [image for image in X[:50]] + [image[:6, :6] for image in X[50:]]


def other_dtype(X, dtype, *, spoil=None):
    X = X.astype(dtype)
    if spoil is not None:
        X[0, 0, 0] = spoil
    return X


CASES = {
    # --- X ---
    "NaN in X": Case(lambda X, y: {"X": with_value(X, (3, 4, 4), np.nan), "y": y},
                     each(METHODS, Raises(ValueError, "Input X contains NaN"))),
    "inf in X": Case(lambda X, y: {"X": with_value(X, (3, 4, 4), np.inf), "y": y},
                     each(METHODS, Raises(ValueError, "Input X contains infinity"))),
    "-inf in X": Case(lambda X, y: {"X": with_value(X, (0, 0, 0), -np.inf), "y": y},
                      each(METHODS, Raises(ValueError, "Input X contains infinity"))),
    "NaN in a DataFrame": Case(lambda X, y: {"X": dataframe(X, nan=True), "y": y},
                               each(METHODS, Raises(ValueError, "Input X contains NaN"))),
    "empty X": Case(lambda X, y: {"X": X[:0], "y": y[:0]},
                    each(METHODS, Raises(ValueError, r"0 sample\(s\)"))),
    "one sample": Case(
        lambda X, y: {"X": X[:1], "y": y[:1]},
        {"fit": Raises(ValueError, r"at least 2 classes; got 1 class: \[\d\]"),
         "partial_fit": Works(),
         "predict": Works(same_as=unchanged), "predict_proba": Works(same_as=unchanged),
         "score": Works()}),
    "X is None": Case(lambda X, y: {"X": None, "y": y},
                      each(METHODS, Raises(ValueError, "Expected 2D array, got scalar"))),
    "1-D X": Case(lambda X, y: {"X": X[0].ravel(), "y": y[:1]},
                  each(METHODS, Raises(ValueError, "Expected 2D array, got 1D array"))),
    "5-D X": Case(lambda X, y: {"X": X[:, None, :, :, None], "y": y},
                  each(METHODS, Raises(ValueError, r"2 to 4 dimensions.*got 5 dimensions"))),
    "images without pixels": Case(
        lambda X, y: {"X": np.zeros((len(X), 0, 8), np.float32), "y": y},
        each(METHODS, Raises(ValueError, r"empty images of shape \(1, 0, 8\)"))),
    "object array of numbers": Case(
        lambda X, y: {"X": X.astype(object), "y": y},
        each(METHODS, Works(same_as=lambda X, y: {"X": X, "y": y}))),
    "object array holding a word": Case(
        lambda X, y: {"X": other_dtype(X, object, spoil="pixel"), "y": y},
        each(METHODS, Raises(ValueError, r"X holds strings \(dtype object\)"))),
    "object array holding a number as text": Case(
        lambda X, y: {"X": other_dtype(X, object, spoil="0.5"), "y": y},
        each(METHODS, Raises(ValueError, r"X holds strings \(dtype object\)"))),
    "object array holding bytes": Case(
        lambda X, y: {"X": other_dtype(X, object, spoil=b"1"), "y": y},
        each(METHODS, Raises(ValueError, r"X holds strings \(dtype object\)"))),
    "bytes array": Case(lambda X, y: {"X": X.astype("S8"), "y": y},
                        each(METHODS, Raises(ValueError, r"X holds strings \(dtype \|S8"))),
    "complex array": Case(lambda X, y: {"X": X.astype(np.complex64), "y": y},
                          each(METHODS, Raises(ValueError, "Complex data not supported"))),
    "string array": Case(lambda X, y: {"X": X.astype(str), "y": y},
                         each(METHODS, Raises(ValueError, r"X holds strings \(dtype <U"))),
    "sparse CSR matrix": Case(
        lambda X, y: {"X": sp.csr_matrix(X.reshape(len(X), -1)), "y": y},
        each(METHODS, Raises(TypeError, "Sparse data was passed.*dense data is required"))),
    "ragged list of images": Case(lambda X, y: {"X": ragged(X), "y": y},
                                  each(METHODS, Raises(ValueError, "images of different shapes"))),
    "huge values (1e30)": Case(
        lambda X, y: {"X": X * np.float32(1e30), "y": y},
        each(METHODS, Raises(ValueError, r"values up to 1e\+30 in magnitude.*float32.*Scale"))),
    "huge float64 values for a float32 network": Case(
        lambda X, y: {"X": X.astype(np.float64) * 1e200, "y": y},
        each(METHODS, Raises(ValueError, r"up to 1e\+200 .*computes in float32")),
        fitted_only=True),
    "images of another size": Case(
        lambda X, y: {"X": np.ascontiguousarray(X[:, :6, :6]), "y": y},
        each(METHODS, Raises(ValueError, r"X has 36 features, but CNNClassifier is expecting "
                                         r"64 .*shape \(1, 6, 6\).*fitted on images of "
                                         r"shape \(1, 8, 8\)")),
        fitted_only=True),
    "images of another channel count": Case(
        lambda X, y: {"X": np.repeat(X[:, None], 3, axis=1), "y": y},
        each(METHODS, Raises(ValueError, r"images of shape \(3, 8, 8\).*fitted on images "
                                         r"of shape \(1, 8, 8\)")),
        fitted_only=True),
    "flat X of another length": Case(
        lambda X, y: {"X": X.reshape(len(X), -1)[:, :50], "y": y},
        each(METHODS, Raises(ValueError, "X has 50 features, but CNNClassifier is expecting "
                                         "64 features")),
        fitted_only=True),
    # --- y ---
    "NaN in y": Case(lambda X, y: {"X": X, "y": labels_with(y, np.nan)},
                     each(WITH_Y, Raises(ValueError, r"Input y(_true)? contains NaN"))),
    "inf in y": Case(lambda X, y: {"X": X, "y": labels_with(y, np.inf)},
                     each(WITH_Y, Raises(ValueError, r"Input y(_true)? contains infinity"))),
    "continuous y": Case(lambda X, y: {"X": X, "y": labels_with(y, 0.5)},
                         each(WITH_Y, Raises(ValueError, "continuous"))),
    "one class in y": Case(
        lambda X, y: {"X": X[:20], "y": np.zeros(20, dtype=int)},
        {"fit": Raises(ValueError, r"at least 2 classes; got 1 class: \[\d\]"),
         "partial_fit": Works(), "score": Works()}),
    "labels outside the classes": Case(
        lambda X, y: {"X": X, "y": y + 10},
        {"partial_fit": Raises(ValueError, r"labels \[10, 11, .*not among the classes")}),
    "X and y of different lengths": Case(
        lambda X, y: {"X": X, "y": y[:50]},
        each(WITH_Y, Raises(ValueError, r"inconsistent numbers of samples: \[100, 50\]"))),
    "y as a column vector": Case(
        lambda X, y: {"X": X, "y": y[:, None]},
        {"fit": Works(DataConversionWarning, "column-vector y", same_as=unchanged),
         "partial_fit": Works(DataConversionWarning, "column-vector y", same_as=unchanged),
         "score": Works(same_as=unchanged)}),
    "y with two columns": Case(
        lambda X, y: {"X": X, "y": np.c_[y, y]},
        each(WITH_Y, Raises(ValueError, r"y should be a 1d array, got an array of shape "
                                        r"\(100, 2\)"))),
    # --- sample_weight ---
    "NaN in sample_weight": Case(
        lambda X, y: {"X": X, "y": y, "sample_weight": labels_with(np.ones(len(y)), np.nan)},
        each(WITH_Y, Raises(ValueError, "Input sample_weight contains NaN"))),
    "negative sample_weight": Case(
        lambda X, y: {"X": X, "y": y, "sample_weight": labels_with(np.ones(len(y)), -1.0)},
        each(("fit", "partial_fit"), Raises(ValueError, "Negative values .*sample_weight"))),
    "sample_weight of another length": Case(
        lambda X, y: {"X": X, "y": y, "sample_weight": np.ones(50)},
        {"fit": Raises(ValueError, r"sample_weight.shape == \(50,\), expected \(100,\)"),
         "partial_fit": Raises(ValueError, r"sample_weight.shape == \(50,\), expected \(100,\)"),
         "score": Raises(ValueError, r"inconsistent numbers of samples: \[100, 100, 50\]")}),
}

MATRIX = [(case, method) for case in CASES for method in METHODS if method in CASES[case].expect]


# --- fixtures and helpers ---------------------------------------------------------

def fresh(backend: str) -> CNNClassifier:
    return CNNClassifier(backend=backend, max_iter=1, random_state=0, width=0.25, **LENET)


@pytest.fixture(scope="module")
def trained():
    """One small fitted estimator per backend (100 images, one epoch), made once."""
    return {}


@pytest.fixture
def fitted(backend, digits, trained):
    """A private copy of the backend's fitted estimator and its reference
    probabilities on 50 held-out images."""
    X, X_test, y, _ = digits
    if backend not in trained:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = fresh(backend).fit(X[:100], y[:100])
        trained[backend] = clf, clf.predict_proba(X_test[:50])
    clf, proba = trained[backend]
    return copy.deepcopy(clf), X_test[:50], proba


@pytest.fixture(scope="module")
def tally(pytestconfig):
    """Counts (backend, method, "tried" / "handled") over the matrix; printed at the end."""
    counts = Counter()
    yield counts
    if not counts:
        return
    lines = ["bad-input matrix: cases handled / tried, per method and backend"]
    for backend in sorted({key[0] for key in counts}):
        cells = [f"{method} {counts[backend, method, 'handled']}/"
                 f"{counts[backend, method, 'tried']}" for method in METHODS]
        lines.append(f"  backend={backend}: " + ", ".join(cells))
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def call(est, method, data, *, first_partial_fit=False):
    X, y = data["X"], data.get("y")
    weights = {} if "sample_weight" not in data else {"sample_weight": data["sample_weight"]}
    if method == "fit":
        return est.fit(X, y, **weights)
    if method == "partial_fit":
        classes = {"classes": CLASSES} if first_partial_fit else {}
        return est.partial_fit(X, y, **classes, **weights)
    if method == "score":
        return est.score(X, y, **weights)
    return getattr(est, method)(X)


def targets(case: Case, method: str, backend: str, fitted_clf) -> list:
    """``(estimator, is_fresh)`` pairs the call is made on: a copy of the fitted
    estimator, and for fit and partial_fit also a fresh one."""
    if method not in ("fit", "partial_fit"):
        return [(fitted_clf, False)]
    if case.fitted_only:
        return [(fitted_clf.set_params(warm_start=True), False)]
    return [(fresh(backend), True), (fitted_clf, False)]


def fitted_state(est) -> dict:
    return {name: value for name, value in vars(est).items()
            if name.endswith("_") and not name.startswith("__")}


def assert_same(after, before) -> None:
    """The caller's data is what it was: same types, dtypes, shapes and values."""
    assert type(after) is type(before)
    if isinstance(before, dict):
        assert after.keys() == before.keys()
        for key in before:
            assert_same(after[key], before[key])
    elif isinstance(before, list):
        assert len(after) == len(before)
        for a, b in zip(after, before, strict=True):
            assert_same(a, b)
    elif isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif sp.issparse(before):
        assert after.dtype == before.dtype and after.shape == before.shape
        np.testing.assert_array_equal(after.toarray(), before.toarray())
    elif isinstance(before, np.ndarray):
        assert after.dtype == before.dtype and after.shape == before.shape
        np.testing.assert_array_equal(after, before)
    else:
        assert after is before or after == before


def refuse_work(monkeypatch, backend: str) -> None:
    """Make building, training or running a network fail loudly."""
    def work(*args, **kwargs):
        raise AssertionError("the backend was called before the input was refused")

    for name in ("build", "build_module", "fit", "predict_proba", "features"):
        monkeypatch.setattr(get_backend(backend), name, work, raising=False)


def outcome(est, method, result, X_ref):
    """What a call produced: the probabilities the estimator now gives after
    fit/partial_fit, else the returned value."""
    return est.predict_proba(X_ref) if method in ("fit", "partial_fit") else np.asarray(result)


# --- the matrix -------------------------------------------------------------------

@pytest.mark.parametrize(("case", "method"), MATRIX)
@pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")  # a DataFrame case
def test_bad_input(case, method, backend, fitted, digits, tally, monkeypatch):
    tally[backend, method, "tried"] += 1
    spec, expect = CASES[case], CASES[case].expect[method]
    fitted_clf, X_ref, proba_ref = fitted
    X, y = digits[0][:100], digits[2][:100]
    data = spec.make(X, y)
    original = copy.deepcopy(data)
    for est, is_fresh in targets(spec, method, backend, fitted_clf):
        state = fitted_state(est)
        if isinstance(expect, Raises):
            with monkeypatch.context() as patch:
                refuse_work(patch, backend)
                with pytest.raises(expect.error, match=expect.match) as caught:
                    call(est, method, data, first_partial_fit=is_fresh)
            assert type(caught.value) is expect.error  # not an IndexError-ValueError mix
            if is_fresh:
                assert fitted_state(est) == {}, "a failed fit left fitted attributes behind"
            else:
                assert fitted_state(est).keys() == state.keys()
                assert (est.n_iter_, est.t_, est.loss_curve_) == (
                    state["n_iter_"], state["t_"], state["loss_curve_"])
                np.testing.assert_array_equal(est.predict_proba(X_ref), proba_ref)
        else:
            before = None if is_fresh else copy.deepcopy(est)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = call(est, method, data, first_partial_fit=is_fresh)
            if expect.warning is not None:
                assert any(issubclass(w.category, expect.warning)
                           and re.search(expect.match, str(w.message)) for w in caught)
            got = outcome(est, method, result, X_ref)
            if method == "predict":
                assert np.isin(got, est.classes_).all()
            else:  # probabilities or an accuracy
                assert np.isfinite(got).all() and (got >= 0).all() and (got <= 1).all()
            if expect.same_as is not None:
                reference = fresh(backend) if is_fresh else before
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    plain = expect.same_as(X, y)
                    expected = outcome(reference, method,
                                       call(reference, method, plain,
                                            first_partial_fit=is_fresh), X_ref)
                if method in ("predict", "predict_proba") and len(got) < len(expected):
                    # one image: as predicted in a batch, up to the rounding of a
                    # pass of another size
                    expected = expected[:len(got)]
                    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
                else:
                    np.testing.assert_array_equal(got, expected)
        assert_same(data, original)
    tally[backend, method, "handled"] += 1


def test_bad_input_matrix_size(tally):
    per_method = Counter(method for _, method in MATRIX)
    bad = {method: sum(isinstance(CASES[c].expect[method], Raises) for c, m in MATRIX
                       if m == method) for method in METHODS}
    print(f"\n{len(CASES)} cases; per method (bad inputs that must raise / all): "
          + ", ".join(f"{m} {bad[m]}/{per_method[m]}" for m in METHODS))
    assert all(per_method[m] >= 15 for m in METHODS)
    assert sum(per_method.values()) >= 15 * len(METHODS)
    # every cell of the matrix that ran was handled
    for key, tried in tally.items():
        if key[2] == "tried":
            assert tally[key[0], key[1], "handled"] == tried


# --- around the matrix ------------------------------------------------------------

@pytest.mark.parametrize("layout", ["float32 NCHW (used without copying)", "uint8 NHWC",
                                    "float64 flat"])
def test_good_input_is_never_modified(backend, digits, layout):
    X, X_test, y, _ = digits
    X, X_test = X[:60], X_test[:20]
    if layout.startswith("float32"):
        X, X_test = np.ascontiguousarray(X[:, None]), np.ascontiguousarray(X_test[:, None])
    elif layout.startswith("uint8"):
        X, X_test = (np.round(a * 255).astype(np.uint8)[..., None] for a in (X, X_test))
    else:
        X, X_test = (a.reshape(len(a), -1).astype(np.float64) for a in (X, X_test))
    y, weights = y[:60], np.linspace(0.5, 2.0, 60)
    for array in (X, X_test, y, weights):  # any write would raise
        array.flags.writeable = False
    originals = [a.copy() for a in (X, X_test, y, weights)]
    clf = fresh(backend).set_params(class_weight="balanced")
    clf.fit(X, y, sample_weight=weights)
    clf.partial_fit(X, y, sample_weight=weights)
    clf.predict(X_test), clf.predict_proba(X_test), clf.predict_log_proba(X_test)
    clf.transform(X_test), clf.score(X_test, y[:20], sample_weight=weights[:20])
    for array, original in zip((X, X_test, y, weights), originals, strict=True):
        np.testing.assert_array_equal(array, original)


def test_huge_float64_values_below_the_limit_stop_at_the_divergence_guard(backend, digits):
    # float64 computes in float64, where 1e30 squared (1e60) is finite: accepted, but
    # no network learns from it; the guard stops, says so and keeps finite weights
    X, y = digits[0][:100].astype(np.float64) * 1e30, digits[2][:100]
    with pytest.warns(ConvergenceWarning, match="Training diverged at epoch 1"):
        clf = fresh(backend).fit(X, y)
    assert clf.n_iter_ == 0
    assert all(np.isfinite(w).all() for w in clf.get_weights().values())
    assert np.isfinite(clf.predict_proba(X)).all()


def test_output_overflow_is_an_error_not_nan_probabilities(backend, fitted):
    clf, X_ref, _ = fitted
    weights = {key: value * np.float32(1e15) for key, value in clf.get_weights().items()}
    get_backend(backend).set_weights(clf.model_, weights)
    with pytest.raises(ValueError, match=r"overflowed to inf or NaN for \d+ of the 50"):
        clf.predict_proba(X_ref)
    with pytest.raises(ValueError, match="overflowed"):
        clf.predict(X_ref)
