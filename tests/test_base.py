"""What both estimators share (_base.py): transform, copies, resuming, clone, fitted state."""

import warnings

import numpy as np
import pytest
from recipes import lenet
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sklearn_cnn import CNNClassifier, CNNRegressor
from sklearn_cnn.datasets import load_digits_images

#: a narrow LeNet: cheap to fit, as every estimator method needs
NARROW = dict(arch="lenet", width=0.5, max_iter=2, random_state=0)


@pytest.fixture(scope="module")
def small(digits):
    """A narrow LeNet classifier and regressor fitted on 200 digits."""
    X, _, y, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = CNNClassifier(**NARROW).fit(X[:200], y[:200])
        reg = CNNRegressor(**NARROW).fit(X[:200], y[:200].astype(float))
    return clf, reg


def test_transform_gives_penultimate_features_for_a_pipeline(backend, digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, X_test, y, y_test = digits
    X, y = X[:800], y[:800]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cnn = lenet(backend=backend, max_iter=8, random_state=0).fit(X, y)
    features = cnn.transform(X_test)
    assert features.shape == (len(X_test), 84)  # LeNet's last hidden layer
    head = LogisticRegression(max_iter=2000).fit(cnn.transform(X), y)
    assert head.score(features, y_test) > 0.9
    pipe = make_pipeline(cnn, LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert pipe.fit(X, y).score(X_test, y_test) > 0.9


def test_transform_is_the_penultimate_layers_output(small, digits):
    X_test = digits[1][:10]
    for estimator in small:
        network = estimator.network_
        penultimate = network.forward(network.images(X_test), len(estimator.specs_) - 2)
        np.testing.assert_array_equal(estimator.transform(X_test),
                                      penultimate.reshape(10, -1))
        assert estimator.transform(X_test).shape == (10, len(estimator.get_feature_names_out()))
    with pytest.raises(NotFittedError):
        CNNClassifier().transform(X_test)


def test_fit_transform_is_fit_then_transform(digits):
    X, _, y, _ = digits
    for cls in (CNNClassifier, CNNRegressor):
        target = y[:100] if cls is CNNClassifier else y[:100].astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            features = cls(**NARROW).fit_transform(X[:100], target)
            expected = cls(**NARROW).fit(X[:100], target).transform(X[:100])
        np.testing.assert_array_equal(features, expected)


def test_to_backend_makes_an_independent_fitted_copy(small, digits):
    X, X_test, y, _ = digits
    clf, _ = small
    weights, proba = clf.get_weights(), clf.predict_proba(X_test)
    for target in ("numpy", "torch"):
        if target == "torch":
            pytest.importorskip("skorch")
        copy = clf.to_backend(target)
        assert copy is not clf and copy.backend == target and clf.backend == "numpy"
        assert copy.network_ is not clf.network_
        assert (copy.loss_curve_, copy.n_iter_, copy.t_) == (clf.loss_curve_, clf.n_iter_,
                                                             clf.t_)
        np.testing.assert_array_equal(copy.classes_, clf.classes_)
        np.testing.assert_allclose(copy.predict_proba(X_test), proba, rtol=1e-4, atol=1e-6)
        copy.partial_fit(X[:50], y[:50])  # trains the copy only
        assert copy.n_iter_ == clf.n_iter_ + 1
        for key, value in weights.items():
            np.testing.assert_array_equal(clf.get_weights()[key], value, err_msg=key)
    with pytest.raises(NotFittedError):
        CNNClassifier().to_backend("numpy")


def test_warm_start_continues_and_a_cold_fit_restarts(digits):
    X, _, y, _ = digits
    X, y = X[:200], y[:200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = lenet(width=0.5, max_iter=2, warm_start=True, random_state=0).fit(X, y)
        first = list(warm.loss_curve_)
        warm.fit(X, y)
        cold = lenet(width=0.5, max_iter=2, random_state=0).fit(X, y).fit(X, y)
    assert warm.n_iter_ == 4 and warm.loss_curve_[:2] == first and warm.t_ == 800
    assert warm.loss_curve_[2] < first[0]  # went on from the trained weights
    assert cold.n_iter_ == 2 and cold.loss_curve_ == first  # started again, the same way
    with pytest.raises(ValueError, match=r"fitted on images of shape \(1, 8, 8\)"):
        warm.fit(X[:, :6, :6], y)
    assert warm.n_iter_ == 4


def test_partial_fit_trains_one_epoch_a_call(digits):
    X, _, y, _ = digits
    clf = lenet(width=0.5, learning_rate="cosine", random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X[:50], y[:50])
    clf.partial_fit(X[:50], y[:50], classes=np.arange(10))
    clf.partial_fit(X[50:100], y[50:100])
    assert clf.n_iter_ == 2 and clf.t_ == 100 and len(clf.loss_curve_) == 2
    assert clf.validation_scores_ is None
    reg = CNNRegressor(**NARROW).partial_fit(X[:50], y[:50].astype(float))
    assert reg.n_iter_ == 1 and reg.t_ == 50


def test_clone_shares_a_fitted_init_from_and_clones_an_unfitted_one(small):
    clf, reg = small
    for source in (clf, reg):
        twin = clone(CNNClassifier(init_from=source, max_iter=1))
        assert twin.init_from is source  # a clone of it would arrive unfitted
    unfitted = CNNClassifier(max_iter=7)
    twin = clone(CNNRegressor(init_from=unfitted))
    assert twin.init_from is not unfitted
    assert twin.init_from.get_params() == unfitted.get_params()
    assert clone(CNNClassifier(init_from="model.npz")).init_from == "model.npz"
    assert not hasattr(clone(clf), "network_")  # the estimator itself: unfitted


def test_fitted_attributes_describe_the_network(small, digits):
    for estimator in small:
        network = estimator.network_
        assert estimator.model_ is network.model and estimator.specs_ is network.specs
        assert estimator.input_shape_ == network.input_shape == (1, 8, 8)
        assert estimator.n_features_in_ == 64
        assert estimator.best_loss_ == min(estimator.loss_curve_)
        assert estimator.validation_scores_ is None and estimator.best_validation_score_ is None
        assert estimator.summary().total_params == network.summary().total_params > 0
        weights = estimator.get_weights()
        weights["0.weight"][:] = 0  # a copy: the network is unchanged
        assert np.abs(estimator.get_weights()["0.weight"]).sum() > 0
    with pytest.raises(NotFittedError):
        CNNRegressor().summary()


def test_a_refit_on_arrays_forgets_the_feature_names_of_a_dataframe(digits):
    pd = pytest.importorskip("pandas")
    X, _, y, _ = digits
    flat = X[:100].reshape(100, -1)
    frame = pd.DataFrame(flat, columns=[f"p{i}" for i in range(64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = CNNClassifier(**{**NARROW, "max_iter": 1}).fit(frame, y[:100])
        assert clf.feature_names_in_.tolist() == list(frame.columns)
        clf.fit(flat, y[:100])
    assert not hasattr(clf, "feature_names_in_")


def test_mixed_precision_is_refused_on_the_numpy_backend(digits):
    X, _, y, _ = digits
    for cls in (CNNClassifier, CNNRegressor):
        estimator = cls(mixed_precision="bfloat16", max_iter=1)
        with pytest.raises(ValueError, match=r"mixed_precision='bfloat16' is a torch backend "
                                             r"option; use backend='torch'"):
            estimator.fit(X[:20], y[:20])
        assert not [name for name in vars(estimator) if name.endswith("_")]


def test_array_api_inputs_are_converted_at_the_boundary(monkeypatch):
    torch = pytest.importorskip("torch")
    import sklearn

    X, y = load_digits_images(return_X_y=True)
    with sklearn.config_context(array_api_dispatch=True):
        clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(
            torch.from_numpy(X[:100]), torch.from_numpy(y[:100]))
        proba = clf.predict_proba(torch.from_numpy(X[:5]))
        score = clf.score(torch.from_numpy(X[:50]), torch.from_numpy(y[:50]))
    reference = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:100], y[:100])
    assert isinstance(proba, np.ndarray)
    np.testing.assert_array_equal(proba, reference.predict_proba(X[:5]))
    assert score == reference.score(X[:50], y[:50])


@pytest.mark.parametrize("cls", ["CNNClassifier", "CNNRegressor"])
def test_fit_on_file_paths_names_the_loader(cls):
    """fit refuses file paths before anything else, naming ImageLoader (a pandas
    column of paths too), and stays unfitted."""
    estimator = {"CNNClassifier": CNNClassifier, "CNNRegressor": CNNRegressor}[cls]()
    with pytest.raises(ValueError, match=rf"file paths \('x.png'...\), but {cls} takes images "
                                         rf"as arrays.*make_pipeline\(ImageLoader\(size=\(H, "
                                         rf"W\)\), {cls}\(\)\)"):
        estimator.fit(["x.png", "y.png"], [0, 1])
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match=r"file paths \('x.png'...\)"):
        estimator.fit(pd.DataFrame({"path": ["x.png", "y.png"]})["path"], [0, 1])
    assert not hasattr(estimator, "network_")


def test_summary_before_fitting_with_an_input_shape():
    """With input_shape, an unfitted estimator describes the network fit would build:
    10 outputs for a classifier, 1 for a regressor, and a note that says so; the
    fitted one is the same network with y's width."""
    table = CNNClassifier("lenet", input_shape=(1, 28, 28)).summary()
    assert table.total_params == 44_426 and table.rows[-1].output_shape == (10,)
    assert table.notes[-1] == ("not fitted: 10 classes assumed for the output layer; fit "
                               "sets the number from y")
    regression = CNNRegressor("lenet", input_shape=(28, 28), filters=(4, 8)).summary()
    assert regression.input_shape == (1, 28, 28) and regression.rows[-1].output_shape == (1,)
    assert "1 output assumed" in regression.notes[-1]
    # adapted to small images as fit adapts it, notes included
    X = np.random.default_rng(0).random((20, 8, 8), dtype=np.float32)
    planned = CNNClassifier("lenet", input_shape=(8, 8), width=0.5).summary()
    fitted = CNNClassifier("lenet", width=0.5, max_iter=1, random_state=0).fit(
        X, np.arange(20) % 10).summary()
    assert planned.rows == fitted.rows and planned.notes[:-1] == fitted.notes
    with pytest.raises(NotFittedError, match=r"This CNNClassifier is not fitted yet and has "
                                             r"no input_shape.*pass input_shape=\(C, H, W\)"
                                             r".*or fit it first"):
        CNNClassifier().summary()
    with pytest.raises(ValueError, match="does not take kernel_size"):
        CNNClassifier("resnet20", input_shape=(3, 32, 32), kernel_size=3).summary()
