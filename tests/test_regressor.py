"""CNNRegressor: continuous targets through the same networks, on both backends."""

import warnings

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_cnn import CNNClassifier, CNNRegressor, load
from sklearn_cnn.datasets import load_digits_images, make_rotation_task
from sklearn_cnn.layers import Conv2d, Flatten, Linear, ReLU

#: quick to fit: a small constant-rate recipe (the defaults are measured in benchmarks/)
QUICK = dict(arch="simple", learning_rate="constant", learning_rate_init=0.003,
             batch_size=50, max_iter=10)


def blob_positions(n: int, seed: int = 0, side: int = 12):
    """Images holding one bright 2x2 square at a random place; targets: its row and
    column (a regression only a network that sees where things are can do)."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, side - 1, n), rng.integers(0, side - 1, n)
    X = rng.normal(0, 0.05, (n, 1, side, side)).astype(np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            X[np.arange(n), 0, rows + dy, cols + dx] += 1.0
    return X, np.column_stack([rows, cols]).astype(np.float64)


@pytest.fixture(scope="module")
def positions():
    return blob_positions(600, seed=0), blob_positions(200, seed=1)


def test_learns_where_things_are_on_both_backends(positions, backend):
    (X, Y), (X_test, Y_test) = positions
    reg = CNNRegressor(backend=backend, random_state=0, **QUICK).fit(X, Y)
    assert reg.n_outputs_ == 2 and reg.predict(X_test).shape == (200, 2)
    assert reg.score(X_test, Y_test) > 0.9
    np.testing.assert_allclose(reg.target_mean_, Y.mean(axis=0))
    np.testing.assert_allclose(reg.target_scale_, Y.std(axis=0))


def test_defaults_learn_the_rotation_angle_of_digits():
    """The default network and recipe, cut from 50 epochs to 5 (R^2 0.96 here); the
    full defaults are measured by benchmarks/rotation_regression.py."""
    X, y = make_rotation_task(load_digits_images().data, random_state=0)
    reg = CNNRegressor(max_iter=5, random_state=0).fit(X[:1400], y[:1400])
    assert reg.score(X[1400:], y[1400:]) > 0.8


def test_targets_are_standardized_so_their_scale_does_not_matter(positions):
    """The network trains on standardized targets: any affine change of y changes
    the predictions by the same affine map, and nothing else."""
    (X, Y), (X_test, _) = positions
    base = CNNRegressor(random_state=0, **QUICK).fit(X, Y[:, 0])
    scaled = CNNRegressor(random_state=0, **QUICK).fit(X, 1e6 * Y[:, 0] - 3e7)
    np.testing.assert_allclose(scaled.predict(X_test), 1e6 * base.predict(X_test) - 3e7,
                               rtol=1e-6)
    assert base.loss_curve_ == scaled.loss_curve_


def test_prediction_shape_follows_y(positions):
    (X, Y), _ = positions
    one = CNNRegressor(random_state=0, **{**QUICK, "max_iter": 1})
    assert one.fit(X, Y[:, 0]).predict(X[:5]).shape == (5,)
    assert one.fit(X, Y[:, :1]).predict(X[:5]).shape == (5, 1)
    assert one.fit(X, [list(row) for row in Y]).predict(X[:5]).shape == (5, 2)
    # integer targets give real-valued predictions, in the network's dtype (float32
    # images: float32, as MLPRegressor keeps its input's)
    assert one.fit(X, Y[:, 0].astype(int)).predict(X[:5]).dtype == np.float32
    assert one.fit(X.astype(np.float64), Y[:, 0].astype(int)).predict(X[:5]).dtype == \
        np.float64


def huber_location(y: np.ndarray, scale: float) -> float:
    """The Huber M-estimate of location (delta = ``scale``), by bisection."""
    low, high = y.min(), y.max()
    for _ in range(100):
        middle = (low + high) / 2
        if np.clip((y - middle) / scale, -1, 1).sum() > 0:
            low = middle
        else:
            high = middle
    return middle


@pytest.mark.parametrize("loss", ["squared_error", "huber", "absolute_error"])
def test_each_loss_predicts_its_own_centre(loss):
    """Identical images leave the network one thing to learn, a constant: the mean of
    the targets under squared error, their median under absolute error, and the Huber
    estimate (near the median: outliers pull with a bounded force) under Huber."""
    X = np.tile(np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32),
                (400, 1, 1, 1))
    y = np.random.default_rng(1).normal(10.0, 1.0, 400)
    y[::10] += 1000.0  # a tenth of the targets are outliers
    # SGD settles on the minimum; Adam's normalized steps keep circling a kink of the
    # absolute and Huber losses by a fraction of a standard deviation
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = CNNRegressor(loss=loss, solver="sgd", max_iter=30, random_state=0).fit(X, y)
    # outliers 1,000 standard deviations off are data, not a divergence
    assert not [w for w in caught if "diverged" in str(w.message)]
    centre = {"squared_error": y.mean(), "absolute_error": np.median(y),
              "huber": huber_location(y, reg.target_scale_[0])}[loss]
    assert reg.predict(X[:1])[0] == pytest.approx(centre, abs=0.02 * reg.target_scale_[0])
    assert (centre > 100) == (loss == "squared_error")


def test_constant_target_is_predicted(positions):
    (X, _), (X_test, _) = positions
    reg = CNNRegressor(random_state=0, **QUICK).fit(X, np.full(len(X), 7.5))
    assert reg.target_scale_.tolist() == [1.0]
    np.testing.assert_allclose(reg.predict(X_test), 7.5, atol=0.05)


def test_early_stopping_watches_validation_r2(positions):
    (X, Y), _ = positions
    reg = CNNRegressor(early_stopping=True, random_state=0, **QUICK).fit(X, Y)
    scores = reg.validation_scores_
    assert len(scores) == reg.n_iter_ and max(scores) <= 1.0
    assert reg.best_validation_score_ == max(scores) > 0.5
    assert reg.best_loss_ is None


def test_partial_fit_keeps_the_first_standardization(positions):
    (X, Y), _ = positions
    reg = CNNRegressor(random_state=0, **QUICK)
    reg.partial_fit(X[:300], Y[:300])
    mean = reg.target_mean_.copy()
    reg.partial_fit(X[300:], Y[300:] + 100)
    np.testing.assert_array_equal(reg.target_mean_, mean)
    assert reg.n_iter_ == 2 and reg.t_ == 600
    with pytest.raises(ValueError, match=r"fitted on 2 output\(s\)"):
        reg.partial_fit(X[:10], Y[:10, 0])
    assert reg.n_iter_ == 2  # the failed call changed nothing


def test_warm_start_continues(positions):
    (X, Y), _ = positions
    reg = CNNRegressor(warm_start=True, random_state=0, **{**QUICK, "max_iter": 2})
    reg.fit(X, Y)
    first = reg.loss_curve_[-1]
    reg.fit(X, Y)
    assert reg.n_iter_ == 4 and reg.loss_curve_[-1] < first


def test_sample_weight_zero_ignores_samples(positions):
    (X, Y), (X_test, Y_test) = positions
    y = Y[:, 0].copy()
    weights = np.ones(len(y))
    y[::2], weights[::2] = -50.0, 0.0  # half the targets are nonsense, weighted 0
    reg = CNNRegressor(random_state=0, **QUICK).fit(X, y, sample_weight=weights)
    assert reg.score(X_test, Y_test[:, 0]) > 0.8
    np.testing.assert_allclose(reg.target_mean_, [Y[1::2, 0].mean()])


def test_classifier_weights_start_a_regressor_and_freeze(digits):
    X_train, _, y_train, _ = digits
    clf = CNNClassifier("simple", max_iter=2, random_state=0).fit(X_train, y_train)
    reg = CNNRegressor("simple", init_from=FrozenEstimator(clf), freeze="features",
                       max_iter=2, random_state=0).fit(X_train, y_train.astype(float))
    source, weights = clf.get_weights(), reg.get_weights()
    for key, value in weights.items():
        if key.startswith("0."):  # the frozen convolution: the classifier's
            np.testing.assert_array_equal(value, source[key])
    head = max(int(k.split(".")[0]) for k in weights)
    assert weights[f"{head}.weight"].shape == (1, source[f"{head}.weight"].shape[1])


def test_save_load_and_to_backend(positions, tmp_path, backend):
    (X, Y), (X_test, _) = positions
    reg = CNNRegressor(backend=backend, random_state=0, **{**QUICK, "max_iter": 2}).fit(X, Y)
    reg.save(tmp_path / "reg.npz")
    restored = load(tmp_path / "reg.npz")
    assert type(restored) is CNNRegressor and restored.n_outputs_ == 2
    np.testing.assert_allclose(restored.predict(X_test), reg.predict(X_test), rtol=1e-6)
    other = "torch" if backend == "numpy" else "numpy"
    pytest.importorskip("skorch")
    moved = reg.to_backend(other)
    np.testing.assert_allclose(moved.predict(X_test), reg.predict(X_test), rtol=1e-4,
                               atol=1e-3)


def test_sklearn_tools_take_it(positions):
    (X, Y), (X_test, Y_test) = positions
    y = Y[:, 0]
    quick = {**QUICK, "max_iter": 3}
    scores = cross_val_score(CNNRegressor(random_state=0, **quick), X, y, cv=2)
    assert scores.shape == (2,) and np.all(scores > 0)
    logged = TransformedTargetRegressor(CNNRegressor(random_state=0, **quick),
                                        func=np.log1p, inverse_func=np.expm1)
    assert logged.fit(X, y).predict(X_test).shape == (200,)
    search = GridSearchCV(CNNRegressor(random_state=0, **quick),
                          {"filters": [(4, 8), (8, 16)]}, cv=2).fit(X, y)
    assert search.best_params_["filters"] in [(4, 8), (8, 16)]
    flat = make_pipeline(FunctionTransformer(lambda Z: Z.reshape(len(Z), -1)),
                         CNNRegressor(input_shape=(1, 12, 12), random_state=0, **quick))
    assert flat.fit(X, y).score(X_test, Y_test[:, 0]) > 0


def test_transform_and_feature_names(positions):
    (X, Y), _ = positions
    reg = CNNRegressor(random_state=0, **{**QUICK, "max_iter": 1}).fit(X, Y)
    features = reg.transform(X[:4])
    assert features.shape == (4, len(reg.get_feature_names_out()))
    assert reg.get_feature_names_out()[0] == "cnnregressor0"


@pytest.mark.parametrize("y, message", [
    (None, "requires y to be passed"),
    (np.array(["a", "b"] * 300), "dtype='numeric' is not compatible"),
    (np.full(600, np.nan), "NaN"),
    (np.zeros((600, 2, 2)), "Found array with dim 3"),
    (np.zeros((600, 0)), "at least one output|0 feature"),
    (np.zeros(599), "inconsistent numbers of samples"),
    (np.full(600, 1e200), "too large to standardize"),
])
def test_bad_targets_are_refused(positions, y, message):
    (X, _), _ = positions
    reg = CNNRegressor(**QUICK)
    with pytest.raises(ValueError, match=message):
        reg.fit(X, y)
    assert not hasattr(reg, "n_outputs_")


def test_spec_lists_end_in_one_unit_per_output(positions):
    (X, Y), _ = positions
    specs = [Conv2d(4, 3), ReLU(), Flatten(), Linear(2)]
    quick = {**QUICK, "arch": specs, "max_iter": 1}
    assert CNNRegressor(**quick).fit(X, Y).n_outputs_ == 2
    with pytest.raises(ValueError, match=r"y has 1 outputs: end the list with Linear\(1\)"):
        CNNRegressor(**quick).fit(X, Y[:, 0])


def test_not_fitted_and_wrong_images(positions):
    (X, Y), _ = positions
    with pytest.raises(NotFittedError):
        CNNRegressor().predict(X)
    reg = CNNRegressor(random_state=0, **{**QUICK, "max_iter": 1}).fit(X, Y)
    with pytest.raises(ValueError, match=r"one image.*X\[None\]"):
        reg.predict(X[0, 0])
    with pytest.raises(ValueError, match="CNNRegressor was fitted on images of shape"):
        reg.predict(np.zeros((2, 1, 8, 8)))


def test_test_time_flip_averages_the_outputs():
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 8, 8)).astype(np.float32)
    y = X.mean(axis=(1, 2, 3))
    reg = CNNRegressor("lenet", max_iter=2, random_state=0).fit(X, y)
    expected = (reg.predict(X) + reg.predict(X[..., ::-1])) / 2
    np.testing.assert_allclose(reg.set_params(test_time_augment="flip").predict(X), expected,
                               rtol=1e-6)
