"""CNNClassifier with the NumPy backend: the scikit-learn contract and the headline score."""

import pickle

import numpy as np
import pytest
from recipes import LENET
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sklearn_cnn import CNNClassifier
from sklearn_cnn.augment import affine


def test_defaults_learn_digits_far_above_chance_in_a_few_epochs(digits):
    """The default network and recipe, cut to 4 epochs (0.98 here), far above chance
    (0.1). The held-out accuracy of the full defaults (0.97 or more in 50 epochs) is
    measured by benchmarks/digits_accuracy.py."""
    X_train, X_test, y_train, y_test = digits
    clf = CNNClassifier(max_iter=4, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 2


def test_max_iter_auto_trains_50_epochs_on_a_small_set(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:200], y_train[:200]
    clf = CNNClassifier("lenet", width=0.5, random_state=0).fit(X, y)
    # max_iter="auto": 2,500 steps of 32 would be 358 epochs of these 200 images,
    # capped at 50; label smoothing keeps the loss above ~0.5
    assert clf.n_iter_ == 50 and len(clf.loss_curve_) == 50
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 3
    assert clf.t_ == 50 * len(X)


@pytest.fixture(scope="module")
def small_fit(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:300], y_train[:300]
    return CNNClassifier(max_iter=3, random_state=0, **LENET).fit(X, y), X, y


def test_fitted_attributes(small_fit):
    clf, X, _ = small_fit
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_features_in_ == 64 and clf.input_shape_ == (1, 8, 8)
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 10) and proba.dtype == np.float32  # the network's dtype
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)
    assert "Total params: 44,426" in str(clf.summary())


def test_every_layout_gives_the_same_predictions(small_fit):
    clf, X, _ = small_fit
    expected = clf.predict_proba(X[:20])
    for variant in (X[:20, None], X[:20, :, :, None], X[:20].reshape(20, 64)):
        np.testing.assert_allclose(clf.predict_proba(variant), expected, rtol=1e-6)


def test_labels_of_any_kind(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:200], y_train[:200]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    clf = CNNClassifier(max_iter=2, random_state=0).fit(X, names[y])
    assert set(clf.predict(X)) <= set(names)
    binary = CNNClassifier(max_iter=2, random_state=0).fit(X, y > 4)
    assert binary.predict(X).dtype == bool
    assert binary.predict_proba(X).shape == (200, 2)


def test_same_seed_same_model_different_seed_different_model(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:200], y_train[:200]
    a = CNNClassifier(max_iter=2, random_state=1).fit(X, y).predict_proba(X)
    b = CNNClassifier(max_iter=2, random_state=1).fit(X, y).predict_proba(X)
    c = CNNClassifier(max_iter=2, random_state=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_sgd_and_rgb_channels_last_input():
    rng = np.random.default_rng(0)
    X = 0.3 * rng.random((80, 12, 12, 3)).astype(np.float32)
    y = np.arange(80) % 2
    X[y == 1, :4, :4, 0] += 1.0  # red square top left, or
    X[y == 0, 8:, 8:, 2] += 1.0  # blue square bottom right
    clf = CNNClassifier(solver="sgd", learning_rate_init=0.05, max_iter=20,
                        random_state=0).fit(X, y)
    assert clf.input_shape_ == (3, 12, 12)
    assert clf.score(X, y) == 1.0


def test_clone_pickle_and_unchanged_input(small_fit):
    clf, X, _ = small_fit
    X_before = X.copy()
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(X, X_before)
    params = clone(clf).get_params()
    assert params["max_iter"] == 3 and not hasattr(clone(clf), "classes_")


def test_errors_name_the_problem(small_fit):
    clf, X, y = small_fit
    with pytest.raises(NotFittedError):
        CNNClassifier().predict(X)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(1, 8, 8\)"):
        clf.predict(np.zeros((2, 7, 7)))
    with pytest.raises(ValueError, match=r"fitted on images of shape \(1, 8, 8\)"):
        clf.predict(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        CNNClassifier().fit(np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CNNClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="dimensions"):
        CNNClassifier().fit(X[:, None, :, :, None], y)
    with pytest.raises(ValueError, match="Unknown arch"):
        CNNClassifier(arch="lenet7").fit(X, y)
    with pytest.raises(ValueError, match="Unknown backend 'tensorflow'"):
        CNNClassifier(backend="tensorflow").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        CNNClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="max_iter"):
        CNNClassifier(max_iter=0).fit(X, y)


def test_custom_spec_list_architecture(digits):
    from sklearn_cnn.layers import BatchNorm, Conv2d, Dropout, GlobalAvgPool2d, Linear, ReLU

    X_train, X_test, y_train, y_test = digits
    arch = [Conv2d(16, 3, padding="same"), BatchNorm(), ReLU(), Conv2d(32, 3, padding=1),
            ReLU(), GlobalAvgPool2d(), Dropout(0.1), Linear(10)]
    clf = CNNClassifier(arch, max_iter=15, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.8


def test_numpy_numbers_from_a_grid_are_accepted_everywhere(digits, tmp_path):
    from sklearn.model_selection import GridSearchCV

    X, _, y, _ = digits
    search = GridSearchCV(CNNClassifier(max_iter=1, random_state=0, **LENET),
                          {"kernel_size": np.arange(3, 6, 2), "filters": [np.array([4, 8])]},
                          cv=2, error_score="raise").fit(X[:120], y[:120])
    assert search.best_params_["kernel_size"] in (3, 5)
    clf = CNNClassifier(arch="simple", max_iter=np.int64(1), batch_size=np.int32(32),
                        learning_rate_init=np.float32(0.01), alpha=np.float32(1e-4),
                        dropout=np.float32(0.25), width=np.float64(0.5),
                        hidden_units=[np.int64(16)], label_smoothing=np.float16(0.1),
                        n_iter_no_change=np.int8(3), random_state=np.int64(0),
                        class_weight={np.int64(0): np.float32(2.0)},
                        input_shape=np.array([1, 8, 8]))
    clf.fit(X[:120], y[:120])
    assert clf.specs_[0].out_channels == 4 and clf.summary().total_params > 0
    clf.save(tmp_path / "m.npz")  # every number made it into the file as plain JSON


def test_unusable_class_weights_are_refused_before_training(digits):
    X, _, y, _ = digits
    for weights, shown in [({0: np.nan}, "nan"), ({0: -1.0}, "-1.0"), ({0: "heavy"}, "'heavy'"),
                           ({0: np.inf}, "inf")]:
        clf = CNNClassifier(class_weight=weights, max_iter=1)
        with pytest.raises(ValueError, match=f"class_weight must map classes to finite "
                                             f"non-negative numbers; got {shown}"):
            clf.fit(X[:60], y[:60])
        assert not hasattr(clf, "classes_")


def test_freeze_features_needs_a_linear_layer(digits):
    from sklearn_cnn.layers import Conv2d, GlobalAvgPool2d

    X, _, y, _ = digits
    clf = CNNClassifier([Conv2d(10, 3), GlobalAvgPool2d()], freeze="features", max_iter=1)
    with pytest.raises(ValueError, match=r"freeze='features'.*no Linear layer"):
        clf.fit(X[:60], y[:60])


@pytest.mark.parametrize("labels,error,message", [
    (np.array([b"a", b"b"] * 30), TypeError, "labels represented as bytes is not supported"),
    (np.array([2**70, 1] * 30, dtype=object), ValueError, "Unknown label type"),
])
def test_bytes_labels_and_huge_ints_are_refused_as_in_mlpclassifier(digits, labels, error,
                                                                     message):
    from sklearn.neural_network import MLPClassifier

    X, _, _, _ = digits
    for estimator in (CNNClassifier(max_iter=1), MLPClassifier(max_iter=1)):
        with pytest.raises(error, match=message):
            estimator.fit(X[:60].reshape(60, -1), labels)
        assert not hasattr(estimator, "classes_")


def test_transform_names_its_features_and_gives_dataframes(digits):
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, X_test, y, y_test = digits
    clf = CNNClassifier(max_iter=1, random_state=0).fit(X[:100], y[:100])
    names = clf.get_feature_names_out()
    assert names.tolist()[:2] == ["cnnclassifier0", "cnnclassifier1"]
    assert len(names) == clf.transform(X_test[:3]).shape[1] == 128
    frame = clf.set_output(transform="pandas").transform(X_test[:3])
    assert isinstance(frame, pd.DataFrame) and frame.columns.tolist() == names.tolist()
    pipe = make_pipeline(CNNClassifier(max_iter=2, random_state=0),
                         LogisticRegression(max_iter=200)).set_output(transform="pandas")
    flat = X.reshape(len(X), -1)
    assert pipe.fit(flat[:200], y[:200]).score(X_test.reshape(len(X_test), -1), y_test) > 0.5
    assert CNNClassifier().__sklearn_tags__().input_tags.three_d_array


def test_one_image_at_predict_gets_told_to_add_a_batch_axis(digits):
    X, X_test, y, _ = digits
    clf = CNNClassifier(max_iter=1, random_state=0).fit(X[:100], y[:100])
    for one in (X_test[0], X_test[0][:, :, None]):  # (8, 8) and (8, 8, 1): one image
        with pytest.raises(ValueError, match=r"shape of one image.*X\[None\]"):
            clf.predict(one)
    assert clf.predict(X_test[:1]).shape == (1,)


def test_predict_reads_flat_rows_in_the_fitted_shape():
    X = np.random.default_rng(0).random((20, 6, 12)).astype(np.float32)
    y = np.arange(20) % 2
    clf = CNNClassifier(max_iter=1, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X.reshape(20, -1)), clf.predict_proba(X))
    with pytest.raises(ValueError, match="X has 71 features, but CNNClassifier is expecting 72"):
        clf.predict(np.zeros((3, 71)))
    with pytest.raises(ValueError, match=r"one image.*X\[None\]"):
        clf.predict(X[0])


def test_test_time_flip_averages_the_mirrored_images(backend):
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 8, 8)).astype(np.float32)
    y = np.arange(40) % 3
    clf = CNNClassifier("lenet", backend=backend, max_iter=2, random_state=0,
                        test_time_augment=None).fit(X, y)
    plain, mirrored = clf.predict_proba(X), clf.predict_proba(X[..., ::-1])
    clf.set_params(test_time_augment="flip")
    averaged = clf.predict_proba(X)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[averaged.argmax(axis=1)])
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)
    # a mirror-symmetric image gets what it got without the averaging
    symmetric = (X + X[..., ::-1]) / 2
    np.testing.assert_allclose(clf.predict_proba(symmetric),
                               clf.set_params(test_time_augment=None).predict_proba(symmetric),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="test_time_augment"):
        CNNClassifier(test_time_augment="rotate").fit(X, y)


def test_test_time_shift_averages_five_half_pixel_moves(backend):
    rng = np.random.default_rng(0)
    X = rng.random((30, 1, 9, 8)).astype(np.float32)
    y = np.arange(30) % 3
    clf = CNNClassifier("lenet", backend=backend, max_iter=2, random_state=0,
                        test_time_augment=None).fit(X, y)
    n = len(X)
    moved = [X] + [affine(X, np.zeros(n), np.zeros(n), np.ones(n), np.full(n, dy),
                          np.full(n, dx))
                   for dy, dx in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5))]
    expected = np.mean([clf.predict_proba(images) for images in moved], axis=0)
    for option in ("shift", "auto"):  # "auto" on 9x8 images: the shifts
        averaged = clf.set_params(test_time_augment=option).predict_proba(X)
        np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(clf.predict(X), clf.classes_[averaged.argmax(axis=1)])
    pixels = (X * 255).astype(np.uint8)  # moved as the floats they are scaled to
    np.testing.assert_allclose(clf.predict_proba(pixels),
                               clf.predict_proba(pixels.astype(np.float32) / 255), rtol=1e-5)
    # "auto" is the default, and adds nothing on 28x28 images or on rows of features
    assert CNNClassifier().test_time_augment == "auto"
    for shape in ((1, 28, 28), (1, 1, 20)):
        X = rng.random((12, *shape)).astype(np.float32)
        clf = CNNClassifier(max_iter=1, random_state=0, backend=backend).fit(
            X, np.arange(12) % 2)
        np.testing.assert_array_equal(
            clf.predict_proba(X), clf.set_params(test_time_augment=None).predict_proba(X))
