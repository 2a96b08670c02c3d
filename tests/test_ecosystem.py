"""The estimators inside scikit-learn's wider toolbox: the model-selection, ensemble,
multiclass, multi-output, calibration, threshold, inspection and metrics-display
clients that take any estimator, metadata routing and pandas output.

Every test trains tiny LeNets (a few epochs on a few hundred 8x8 digits) and checks
what the client computes from them: shapes and ranges, scores above chance, and
agreement with the estimator used directly. test_sklearn_integration.py covers
pipelines with scalers, the searches, voting, plain calibration, pickling and
DataFrames; this file covers the rest.
"""

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cnn import CNNClassifier, CNNRegressor

pytestmark = pytest.mark.usefixtures("one_thread")

#: 10 classes: chance is 0.1
CHANCE = 0.1


def cnn(**params) -> CNNClassifier:
    """LeNet on the default recipe, five epochs: about 0.9 accuracy on 300 digits."""
    return CNNClassifier(**{"arch": "lenet", "max_iter": 5, "random_state": 0, **params})


def cnn_regressor(**params) -> CNNRegressor:
    return CNNRegressor(**{"arch": "lenet", "max_iter": 10, "random_state": 0, **params})


@pytest.fixture(scope="module")
def images(digits):
    """300 training and 200 test digits as (n, 8, 8) float32 images."""
    X_train, X_test, y_train, y_test = digits
    return X_train[:300], X_test[:200], y_train[:300], y_test[:200]


@pytest.fixture(scope="module")
def flat(images):
    """The same digits as flat rows of 64 pixels."""
    X_train, X_test, y_train, y_test = images
    return X_train.reshape(-1, 64), X_test.reshape(-1, 64), y_train, y_test


@pytest.fixture(scope="module")
def binary(images):
    """Digits 0-4 against 5-9, as booleans."""
    X_train, X_test, y_train, y_test = images
    return X_train, X_test, y_train >= 5, y_test >= 5


@pytest.fixture(scope="module")
def brightness(images):
    """A regression target: the mean brightness of the top half of each digit."""
    X_train, X_test, _, _ = images

    def target(X):
        return 10 * X[:, :4].mean(axis=(1, 2), dtype=np.float64)

    return X_train, X_test, target(X_train), target(X_test)


@pytest.fixture(scope="module")
def fitted(images):
    X_train, _, y_train, _ = images
    return cnn().fit(X_train, y_train)


@pytest.fixture(scope="module")
def fitted_binary(binary):
    X_train, _, y_train, _ = binary
    return cnn().fit(X_train, y_train)


# -- model selection --------------------------------------------------------------------

def test_successive_halving_spends_epochs_as_its_resource(images):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    X, X_test, y, y_test = images
    search = HalvingGridSearchCV(cnn(), {"learning_rate_init": [0.003, 0.01, 0.03]},
                                 resource="max_iter", min_resources=2, max_resources=6,
                                 factor=3, cv=2, random_state=0).fit(X, y)
    assert search.n_resources_ == [2, 6]  # epochs per round
    assert search.n_candidates_ == [3, 1]
    assert search.best_estimator_.max_iter == 6 and search.best_estimator_.n_iter_ == 6
    assert search.score(X_test, y_test) > 0.7


def test_learning_curve_improves_with_more_training_images(images):
    from sklearn.model_selection import learning_curve

    X, _, y, _ = images
    sizes, train, test = learning_curve(cnn(), X, y, train_sizes=[0.2, 1.0], cv=2,
                                        shuffle=True, random_state=0)
    assert sizes.tolist() == [30, 150] and train.shape == test.shape == (2, 2)
    assert test[1].mean() > test[0].mean() and test[1].mean() > 0.6


def test_validation_curve_over_the_width_multiplier(images):
    from sklearn.model_selection import validation_curve

    X, _, y, _ = images
    train, test = validation_curve(cnn(), X, y, param_name="width",
                                   param_range=[0.25, 1.0], cv=2)
    assert train.shape == test.shape == (2, 2)
    assert ((0 <= test) & (test <= 1)).all() and test[1].mean() > 0.6


def test_permutation_test_score_finds_the_labels_matter(binary):
    from sklearn.model_selection import permutation_test_score

    X, _, y, _ = binary
    score, permuted, pvalue = permutation_test_score(cnn(), X, y, cv=2, n_permutations=2,
                                                     random_state=0)
    assert score > 0.7 and permuted.shape == (2,) and (permuted < score).all()
    assert pvalue == pytest.approx(1 / 3)  # the smallest p-value two permutations give


def test_cross_val_predict_probabilities(images):
    from sklearn.model_selection import cross_val_predict

    X, _, y, _ = images
    proba = cross_val_predict(cnn(), X, y, cv=2, method="predict_proba")
    assert proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(proba.argmax(axis=1) == y) > 0.6


def test_tuned_threshold_maximises_balanced_accuracy(binary):
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import TunedThresholdClassifierCV

    X, X_test, y, y_test = binary
    tuned = TunedThresholdClassifierCV(cnn(), scoring="balanced_accuracy", cv=2,
                                       thresholds=20).fit(X, y)
    assert 0 < tuned.best_threshold_ < 1
    predicted = tuned.predict(X_test)
    assert set(predicted) <= {False, True}
    assert balanced_accuracy_score(y_test, predicted) > 0.75


def test_fixed_threshold_on_a_frozen_cnn(fitted_binary, binary):
    from sklearn.model_selection import FixedThresholdClassifier

    _, X_test, _, y_test = binary
    frozen = FrozenEstimator(fitted_binary)
    positives = {}
    for threshold in (0.1, 0.5, 0.9):
        model = FixedThresholdClassifier(frozen, threshold=threshold).fit(X_test, y_test)
        positives[threshold] = model.predict(X_test).sum()
    assert positives[0.1] >= positives[0.5] >= positives[0.9]
    assert positives[0.1] > positives[0.9]
    # at 0.5 the CNN's own decision
    middle = FixedThresholdClassifier(frozen, threshold=0.5).fit(X_test, y_test)
    np.testing.assert_array_equal(middle.predict(X_test), fitted_binary.predict(X_test))


# -- calibration, multiclass and multi-output -----------------------------------------

def test_calibrating_a_frozen_cnn_leaves_it_unchanged(fitted, images):
    from sklearn.calibration import CalibratedClassifierCV

    _, X_test, _, y_test = images
    before = fitted.get_weights()
    calibrated = CalibratedClassifierCV(FrozenEstimator(fitted), method="sigmoid")
    calibrated.fit(X_test[:100], y_test[:100])
    proba = calibrated.predict_proba(X_test[100:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert calibrated.score(X_test[100:], y_test[100:]) > 0.7
    for key, value in fitted.get_weights().items():
        np.testing.assert_array_equal(value, before[key])


def test_one_vs_rest_trains_one_binary_cnn_per_class(images):
    from sklearn.multiclass import OneVsRestClassifier

    X, X_test, y, y_test = images
    keep, keep_test = y < 3, y_test < 3
    ovr = OneVsRestClassifier(cnn()).fit(X[keep], y[keep])
    assert len(ovr.estimators_) == 3
    assert all(e.classes_.tolist() == [0, 1] for e in ovr.estimators_)
    assert ovr.score(X_test[keep_test], y_test[keep_test]) > 0.8


def test_output_codes_with_cnns(flat):
    """OutputCodeClassifier (as Bagging and SelfTraining) takes 2-D X only: flat rows,
    which the CNN reads as 8x8 images."""
    from sklearn.multiclass import OutputCodeClassifier

    X, X_test, y, y_test = flat
    keep, keep_test = y < 4, y_test < 4
    codes = OutputCodeClassifier(cnn(), code_size=1.5, random_state=0).fit(X[keep], y[keep])
    assert codes.code_book_.shape == (4, 6) and len(codes.estimators_) == 6
    assert codes.score(X_test[keep_test], y_test[keep_test]) > 0.6


def test_multi_output_classifier_one_cnn_per_target(images):
    from sklearn.multioutput import MultiOutputClassifier

    X, X_test, y, y_test = images
    targets = np.column_stack([y % 2, y >= 5])
    model = MultiOutputClassifier(cnn()).fit(X, targets)
    predicted = model.predict(X_test)
    assert predicted.shape == (len(X_test), 2)
    expected = np.column_stack([y_test % 2, y_test >= 5])
    assert (predicted == expected).mean(axis=0).min() > 0.7
    assert [p.shape for p in model.predict_proba(X_test)] == [(len(X_test), 2)] * 2


def test_multi_output_regressor_one_cnn_per_target(brightness):
    from sklearn.multioutput import MultiOutputRegressor

    X, X_test, y, y_test = brightness
    targets = np.column_stack([y, -2 * y])
    model = MultiOutputRegressor(cnn_regressor()).fit(X, targets)
    predicted = model.predict(X_test)
    assert predicted.shape == (len(X_test), 2)
    assert np.corrcoef(predicted[:, 0], y_test)[0, 1] > 0.8
    assert np.corrcoef(predicted[:, 1], -2 * y_test)[0, 1] > 0.8


def test_transformed_target_regressor_predicts_on_the_original_scale(brightness):
    from sklearn.compose import TransformedTargetRegressor

    X, X_test, y, y_test = brightness
    model = TransformedTargetRegressor(cnn_regressor(), func=np.log1p, inverse_func=np.expm1)
    predicted = model.fit(X, y).predict(X_test)
    assert (predicted > -1).all()  # expm1 of anything
    assert model.score(X_test, y_test) > 0.5


# -- ensembles --------------------------------------------------------------------------

def test_bagging_cnns(flat, backend):
    from sklearn.ensemble import BaggingClassifier

    X, X_test, y, y_test = flat
    bag = BaggingClassifier(cnn(backend=backend), n_estimators=2, max_samples=0.9,
                            random_state=0).fit(X, y)
    assert len(bag.estimators_) == 2
    seeds = {e.random_state for e in bag.estimators_}
    assert len(seeds) == 2  # each member seeded apart
    proba = bag.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert bag.score(X_test, y_test) > 0.7


def test_stacking_a_cnn_with_a_linear_model(flat, backend):
    from sklearn.ensemble import StackingClassifier

    X, X_test, y, y_test = flat
    stack = StackingClassifier([("cnn", cnn(backend=backend)),
                                ("logreg", LogisticRegression(max_iter=300))],
                               final_estimator=LogisticRegression(max_iter=300), cv=2)
    stack.fit(X, y)
    assert stack.transform(X_test).shape == (len(X_test), 20)  # two models' probabilities
    assert stack.score(X_test, y_test) > 0.8


def test_stacking_regressors(brightness):
    from sklearn.ensemble import StackingRegressor

    X, X_test, y, y_test = brightness
    flat_X, flat_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    stack = StackingRegressor([("cnn", cnn_regressor()), ("ridge", Ridge())],
                              final_estimator=Ridge(), cv=2).fit(flat_X, y)
    assert stack.predict(flat_test).shape == (len(X_test),)
    assert stack.score(flat_test, y_test) > 0.8


def test_self_training_labels_unlabelled_images(flat):
    from sklearn.semi_supervised import SelfTrainingClassifier

    X, X_test, y, y_test = flat
    partly = np.where(np.arange(len(y)) < 150, y, -1)  # half of the labels hidden
    model = SelfTrainingClassifier(cnn(), threshold=0.9, max_iter=2).fit(X, partly)
    assert (model.labeled_iter_[:150] == 0).all()
    assert model.transduction_.shape == (len(X),)
    assert model.score(X_test, y_test) > 0.6


# -- inspection and metrics displays ----------------------------------------------------

def test_permutation_importance_of_pixels(flat):
    from sklearn.inspection import permutation_importance

    X, X_test, y, y_test = flat
    model = cnn().fit(X, y)
    result = permutation_importance(model, X_test, y_test, n_repeats=2, random_state=0)
    assert result.importances.shape == (64, 2)
    blank = np.flatnonzero(X_test.std(axis=0) == 0)  # pixels that are 0 in every digit
    assert len(blank) > 0
    np.testing.assert_array_equal(result.importances_mean[blank], 0.0)
    assert result.importances_mean.max() > 0.01


def test_metrics_displays_from_the_estimator(fitted, fitted_binary, images, binary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        DetCurveDisplay,
        PrecisionRecallDisplay,
        RocCurveDisplay,
    )

    _, X_test, _, y_test = images
    matrix = ConfusionMatrixDisplay.from_estimator(fitted, X_test, y_test).confusion_matrix
    assert matrix.shape == (10, 10) and matrix.sum() == len(y_test)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(fitted.score(X_test, y_test))
    _, X_bin, _, y_bin = binary
    assert RocCurveDisplay.from_estimator(fitted_binary, X_bin, y_bin).roc_auc > 0.85
    precision = PrecisionRecallDisplay.from_estimator(fitted_binary, X_bin, y_bin)
    assert precision.average_precision > 0.85
    det = DetCurveDisplay.from_estimator(fitted_binary, X_bin, y_bin)
    assert ((0 <= det.fpr) & (det.fpr <= 1)).all()
    plt.close("all")


def test_several_scorers_read_probabilities(images):
    from sklearn.model_selection import cross_validate

    X, _, y, _ = images
    results = cross_validate(cnn(), X, y, cv=2,
                             scoring=["accuracy", "neg_log_loss", "roc_auc_ovr",
                                      "balanced_accuracy"])
    assert results["test_accuracy"].mean() > 0.6
    assert results["test_roc_auc_ovr"].mean() > 0.9
    assert (results["test_neg_log_loss"] < 0).all()
    assert results["test_neg_log_loss"].mean() > -np.log(10)  # better than uniform


# -- metadata routing and pandas ------------------------------------------------------

def test_sample_weight_routed_through_a_pipeline_in_a_grid_search(flat):
    from sklearn.model_selection import GridSearchCV

    X, X_test, y, y_test = flat
    weights = (y != 9).astype(float)  # weights out every 9
    with sklearn.config_context(enable_metadata_routing=True):
        step = cnn().set_fit_request(sample_weight=True).set_score_request(
            sample_weight=True)
        pipeline = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), step)
        search = GridSearchCV(pipeline, {"cnnclassifier__alpha": [1e-4, 1e-3]}, cv=2)
        search.fit(X, y, sample_weight=weights)
        assert np.mean(search.predict(X_test[y_test == 9]) == 9) < 0.2
        unweighted = clone(search).fit(X, y)
        assert np.mean(unweighted.predict(X_test[y_test == 9]) == 9) > 0.5
        # a weight nobody asked for is an error, not silently dropped
        unrequested = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                                    cnn())
        with pytest.raises(ValueError, match="sample_weight"):
            unrequested.fit(X, y, sample_weight=weights)


def test_pandas_output_of_the_cnn_as_a_transformer(flat):
    pd = pytest.importorskip("pandas")

    X, X_test, y, _ = flat
    features = make_pipeline(cnn(), StandardScaler()).set_output(transform="pandas")
    table = features.fit_transform(X, y)
    assert isinstance(table, pd.DataFrame)
    assert table.shape == (len(X), 84)  # LeNet's penultimate layer
    assert list(table.columns[:2]) == ["cnnclassifier0", "cnnclassifier1"]
    network_features = features[0].transform(X)
    np.testing.assert_allclose(table.to_numpy(),
                               StandardScaler().fit_transform(network_features), atol=1e-5)
    test_table = features.transform(pd.DataFrame(X_test, index=range(1000, 1000 + len(X_test))))
    assert isinstance(test_table, pd.DataFrame) and test_table.index[0] == 1000


def test_column_transformer_picks_the_pixel_columns_of_a_dataframe(flat):
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer

    X, X_test, y, y_test = flat
    pixels = [f"pixel{i}" for i in range(64)]

    def table(rows):
        frame = pd.DataFrame(rows, columns=pixels)
        frame.insert(0, "writer", "somebody")  # a column the network must not see
        return frame

    model = make_pipeline(
        ColumnTransformer([("pixels", "passthrough", pixels)]).set_output(transform="pandas"),
        cnn())
    model.fit(table(X), y)
    assert list(model[-1].feature_names_in_) == [f"pixels__{p}" for p in pixels]
    assert model.score(table(X_test), y_test) > 0.7
    np.testing.assert_array_equal(model.predict(table(X_test)), cnn().fit(X, y).predict(X_test))


# -- optional libraries, when installed ---------------------------------------------------

def test_imbalanced_learn_resampling_pipeline(flat):
    imblearn = pytest.importorskip("imblearn")

    X, X_test, y, y_test = flat
    keep = (y != 3) | (np.cumsum(y == 3) <= 5)  # five 3s only
    model = imblearn.pipeline.make_pipeline(
        imblearn.over_sampling.RandomOverSampler(random_state=0), cnn())
    model.fit(X[keep], y[keep])
    assert model.score(X_test, y_test) > 0.6


def test_optuna_search(images):
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")

    X, _, y, _ = images
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = integration.OptunaSearchCV(
        cnn(), {"learning_rate_init": optuna.distributions.FloatDistribution(1e-3, 3e-2,
                                                                             log=True)},
        n_trials=2, cv=2, random_state=0).fit(X, y)
    assert search.best_score_ > 0.5
