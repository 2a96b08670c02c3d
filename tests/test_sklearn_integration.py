"""CNNClassifier inside scikit-learn's machinery, on both backends."""

import pickle

import joblib
import numpy as np
import pytest
from recipes import LENET
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sklearn_cnn import CNNClassifier


@pytest.fixture(scope="module")
def flat_digits(digits):
    X_train, X_test, y_train, y_test = digits
    return X_train.reshape(-1, 64)[:600], X_test.reshape(-1, 64), y_train[:600], y_test


def fast(backend, **params):
    return CNNClassifier(backend=backend,
                         **{"max_iter": 10, "random_state": 0, **LENET, **params})


def test_pipeline_with_scalers_and_cross_validation(backend, flat_digits):
    X, _, y, _ = flat_digits
    for scaler in (MinMaxScaler(), StandardScaler()):
        scores = cross_val_score(make_pipeline(scaler, fast(backend)), X, y, cv=3)
        assert scores.mean() > 0.8
    results = cross_validate(fast(backend), X, y, cv=2, return_train_score=True)
    assert set(results) >= {"test_score", "train_score", "fit_time"}


def test_grid_and_randomized_search_with_two_processes(backend, flat_digits):
    """loky workers: BLAS and torch are limited to one thread each inside them."""
    X, _, y, _ = flat_digits
    grid = GridSearchCV(fast(backend), {"filters": [(4, 8), (8, 16)]}, cv=2, n_jobs=2,
                        refit=False).fit(X, y)
    assert len(grid.cv_results_["params"]) == 2 and grid.best_score_ > 0.8
    randomized = RandomizedSearchCV(fast(backend), {"learning_rate_init": loguniform(1e-3, 1e-2)},
                                    n_iter=2, cv=2, n_jobs=2, random_state=0,
                                    refit=False).fit(X, y)
    assert randomized.best_score_ > 0.8


def test_clone_and_nested_params(backend):
    pipe = make_pipeline(StandardScaler(), fast(backend, filters=(4, 8)))
    params = pipe.get_params(deep=True)
    assert params["cnnclassifier__filters"] == (4, 8)
    pipe.set_params(cnnclassifier__filters=(8, 8), cnnclassifier__width=0.5)
    twin = clone(pipe)
    assert twin.get_params()["cnnclassifier__filters"] == (8, 8)
    assert twin.get_params()["cnnclassifier__width"] == 0.5


def test_calibration_and_voting(backend, flat_digits):
    X, X_test, y, y_test = flat_digits
    calibrated = CalibratedClassifierCV(fast(backend), cv=2).fit(X, y)
    np.testing.assert_allclose(calibrated.predict_proba(X_test).sum(axis=1), 1.0)
    vote = VotingClassifier([("cnn", fast(backend)),
                             ("logreg", LogisticRegression(max_iter=500))], voting="soft")
    assert vote.fit(X, y).score(X_test, y_test) > 0.85


def test_pickle_and_joblib_round_trips(backend, flat_digits, tmp_path):
    X, X_test, y, _ = flat_digits
    clf = fast(backend).fit(X, y)
    expected = clf.predict_proba(X_test)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X_test),
                                  expected)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X_test),
                                  expected)


def test_pandas_dataframe_input(backend, flat_digits):
    pd = pytest.importorskip("pandas")
    X, X_test, y, _ = flat_digits
    columns = [f"pixel_{i}" for i in range(64)]
    clf = fast(backend).fit(pd.DataFrame(X, columns=columns), pd.Series(y))
    assert list(clf.feature_names_in_) == columns
    with pytest.warns(UserWarning, match="valid feature names"):
        plain = clf.predict_proba(X_test)
    np.testing.assert_allclose(clf.predict_proba(pd.DataFrame(X_test, columns=columns)), plain)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(pd.DataFrame(X_test, columns=columns[::-1]))


def test_binary_and_multiclass(backend, flat_digits):
    X, X_test, y, y_test = flat_digits
    binary = fast(backend).fit(X, y % 2 == 0)
    assert binary.classes_.tolist() == [False, True]
    assert binary.score(X_test, y_test % 2 == 0) > 0.8
    multi = fast(backend).fit(X, y)
    assert multi.predict_proba(X_test).shape == (len(X_test), 10)


def test_sample_weight_and_class_weight(backend, flat_digits):
    X, X_test, y, y_test = flat_digits
    # zero weights remove samples: weighting out all 9s leaves a model that never says 9
    zero_nines = fast(backend).fit(X, y, sample_weight=(y != 9).astype(float))
    assert np.mean(zero_nines.predict(X_test[y_test == 9]) == 9) < 0.2
    # a rare class gains recall with class_weight="balanced"
    keep = (y != 3) | (np.cumsum(y == 3) <= 6)
    Xr, yr = X[keep], y[keep]
    plain = fast(backend).fit(Xr, yr)
    balanced = fast(backend, class_weight="balanced").fit(Xr, yr)
    recall = {name: recall_score(y_test == 3, model.predict(X_test) == 3)
              for name, model in (("plain", plain), ("balanced", balanced))}
    assert recall["balanced"] >= recall["plain"]
    heavy = fast(backend, class_weight={3: 50.0}).fit(Xr, yr)
    assert np.mean(heavy.predict(X_test) == 3) > np.mean(plain.predict(X_test) == 3)
    with pytest.raises(ValueError, match=r"(?i)negative"):
        fast(backend).fit(X, y, sample_weight=-np.ones(len(y)))


def test_partial_fit_and_warm_start(backend, flat_digits):
    X, X_test, y, y_test = flat_digits
    clf = fast(backend)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:100], y[:100])
    for _ in range(4):
        for begin in range(0, len(X), 200):
            clf.partial_fit(X[begin:begin + 200], y[begin:begin + 200], classes=np.arange(10))
    assert clf.n_iter_ == 12 and clf.t_ == 4 * len(X)
    assert clf.score(X_test, y_test) > 0.8
    with pytest.raises(ValueError, match=r"labels \[10\]"):
        clf.partial_fit(X[:5], np.full(5, 10))
    with pytest.raises(ValueError, match="expecting 64 features"):
        clf.partial_fit(X[:5, :49], y[:5])

    warm = fast(backend, warm_start=True).fit(X, y)
    before = warm.loss_curve_[-1]
    warm.fit(X, y)
    assert warm.n_iter_ == 20 and len(warm.loss_curve_) == 20
    assert warm.loss_curve_[10] < before * 1.5  # continued, not restarted from scratch
    cold = fast(backend).fit(X, y).fit(X, y)
    assert cold.n_iter_ == 10


def test_image_specific_errors_name_both_shapes(backend):
    rng = np.random.default_rng(0)
    rgb_last = rng.random((12, 9, 9, 3), dtype=np.float32)
    y = np.arange(12) % 2
    clf = fast(backend, max_iter=1).fit(rgb_last, y)
    assert clf.input_shape_ == (3, 9, 9)
    with pytest.raises(ValueError, match=r"shape \(1, 9, 9\).*fitted on images of shape "
                                         r"\(3, 9, 9\)"):
        clf.predict(rgb_last[..., 0])  # another channel count
    with pytest.raises(ValueError, match=r"shape \(3, 8, 8\).*\(3, 9, 9\)"):
        clf.predict(rgb_last[:, :8, :8])  # another image size
    forced = clone(clf).set_params(channels="first").fit(rgb_last.transpose(0, 3, 1, 2), y)
    with pytest.raises(ValueError, match=r"shape \(9, 9, 3\).*\(3, 9, 9\)"):
        forced.predict(rgb_last)  # channels-last data read as channels-first
    from sklearn_cnn.layers import Conv2d, Flatten, Linear

    too_small = CNNClassifier([Conv2d(4, 5), Flatten(), Linear(2)], backend=backend)
    with pytest.raises(ValueError, match=r"5x5 does not fit input 3x3"):
        too_small.fit(rng.random((4, 3, 3), dtype=np.float32), [0, 1, 0, 1])


QUIET_SEARCH = """
import warnings
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
X, y = load_digits_images(return_X_y=True)
if {silence}:
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
GridSearchCV(CNNClassifier("lenet", max_iter=2, {params}), {{"filters": [(4, 8), (6, 16)]}},
             cv=2, n_jobs=2).fit(X[:300], y[:300])
print("done")
"""


@pytest.mark.parametrize("params, silence, expected", [
    ("", False, 0),                           # the defaults warn nowhere
    ("learning_rate='constant'", True, 0),    # the workers inherit the caller's filters
    ("learning_rate='constant'", False, 5),   # one per fit, as MLPClassifier's
])
def test_warnings_of_parallel_fits_follow_the_callers_filters(params, silence, expected):
    import subprocess
    import sys

    script = QUIET_SEARCH.format(silence=silence, params=params)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr
    assert result.stderr.count("ConvergenceWarning") == expected, result.stderr
