"""One owner for training: the estimator's loop drives both backends alike, and a
call either completes or leaves the estimator exactly as it was."""

import threading

import numpy as np
import pytest
from recipes import lenet
from sklearn.exceptions import NotFittedError

from sklearn_cnn import CNNClassifier, load
from sklearn_cnn import layers as S

QUIET = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fingerprint(clf, X):
    """Everything a caller can see of a fitted estimator."""
    state = {name: value for name, value in vars(clf).items()
             if name.endswith("_") and name != "model_"}
    return repr(state), clf.predict_proba(X), clf.get_weights()


def assert_same(before, after):
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    for key, value in before[2].items():
        np.testing.assert_array_equal(after[2][key], value, err_msg=key)


def fails_on_second_batch():
    calls = []

    def augment(batch):
        calls.append(1)
        if len(calls) % 2 == 0:
            raise MemoryError("no room for this batch")
        return batch
    return augment


@pytest.mark.parametrize("dtype,atol", [(np.float32, 1e-4), (np.float64, 1e-8)])
@QUIET
def test_backends_train_alike_with_shuffle_and_augmentation(digits, dtype, atol):
    pytest.importorskip("skorch")
    X, _, y, _ = digits
    params = dict(arch="simple", max_iter=3, batch_size=64, augment="standard",
                  shuffle=True, learning_rate="onecycle", alpha=0.01, random_state=0)
    fits = {b: lenet(backend=b, **params).fit(X[:300].astype(dtype), y[:300])
            for b in ("numpy", "torch")}
    np.testing.assert_allclose(fits["numpy"].loss_curve_, fits["torch"].loss_curve_,
                               rtol=atol * 10)
    numpy_weights, torch_weights = (fits[b].get_weights() for b in ("numpy", "torch"))
    for key, value in numpy_weights.items():
        assert value.dtype == dtype
        np.testing.assert_allclose(value, torch_weights[key], atol=atol, err_msg=key)


@QUIET
def test_label_smoothing_is_the_same_loss_on_both_backends(digits):
    pytest.importorskip("skorch")
    X, _, y, _ = digits
    params = dict(arch="simple", max_iter=2, label_smoothing=0.1, random_state=0)
    fits = [lenet(backend=b, **params).fit(X[:200].astype(np.float64), y[:200])
            for b in ("numpy", "torch")]
    np.testing.assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=1e-8)
    plain = CNNClassifier("simple", max_iter=2, random_state=0).fit(
        X[:200].astype(np.float64), y[:200])
    assert abs(fits[0].loss_curve_[0] - plain.loss_curve_[0]) > 1e-3


def test_a_failing_fit_leaves_no_half_fitted_estimator(backend, digits):
    X, _, y, _ = digits

    def broken(batch):
        raise RuntimeError("augmentation failed")

    clf = lenet(backend=backend, augment=broken, max_iter=2)
    with pytest.raises(RuntimeError, match="augmentation failed"):
        clf.fit(X[:100], y[:100])
    with pytest.raises(NotFittedError):
        clf.predict(X[:5])
    assert not [name for name in vars(clf) if name.endswith("_")]


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
@QUIET
def test_a_failing_call_leaves_a_fitted_estimator_as_it_was(backend, digits, how):
    X, X_test, y, _ = digits
    clf = lenet(backend=backend, max_iter=2, batch_size=100, random_state=0)
    clf.fit(X[:300], y[:300])
    twin = lenet(backend=backend, max_iter=2, batch_size=100, random_state=0)
    twin.fit(X[:300], y[:300])
    before = fingerprint(clf, X_test)
    clf.set_params(augment=fails_on_second_batch(), warm_start=True)
    with pytest.raises(MemoryError):
        if how == "partial_fit":
            clf.partial_fit(X[:300], y[:300])
        else:
            clf.fit(X[:300], y[:300])
    assert_same(before, fingerprint(clf, X_test))
    # the optimizer state came back too: the next step is the one the twin takes
    clf.set_params(augment=None)
    clf.partial_fit(X[:300], y[:300])
    twin.partial_fit(X[:300], y[:300])
    np.testing.assert_array_equal(clf.predict_proba(X_test), twin.predict_proba(X_test))


@QUIET
def test_a_refused_refit_keeps_the_fitted_model_and_its_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X, _, y, _ = digits
    frame = pd.DataFrame(X[:200].reshape(200, -1), columns=[f"p{i}" for i in range(64)])
    clf = lenet(max_iter=1, random_state=0).fit(frame, y[:200])
    before = fingerprint(clf, frame)
    with pytest.raises(ValueError, match="filters"):
        clf.set_params(filters=(0, 3)).fit(frame, y[:200])
    assert_same(before, fingerprint(clf, frame))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"p0": "other"}))


@QUIET
def test_interrupt_during_the_epoch_report_keeps_a_consistent_estimator(digits, monkeypatch):
    import sklearn_cnn._base as base_module

    X, X_test, y, _ = digits
    reports = []

    def report(epoch, record):
        reports.append(epoch)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(base_module, "print_epoch", report)
    clf = lenet(max_iter=5, verbose=1, random_state=0)
    with pytest.warns(UserWarning, match="interrupted during epoch 2"):
        clf.fit(X[:300], y[:300])
    reference = lenet(max_iter=1, random_state=0).fit(X[:300], y[:300])
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 1
    np.testing.assert_array_equal(clf.predict_proba(X_test), reference.predict_proba(X_test))


@QUIET
def test_changing_backend_after_fitting(digits):
    pytest.importorskip("skorch")
    X, X_test, y, _ = digits
    clf = lenet(max_iter=1, random_state=0).fit(X[:200], y[:200])
    expected = clf.predict_proba(X_test)
    clf.set_params(backend="torch")
    # prediction runs on the backend that fitted the model
    np.testing.assert_array_equal(clf.predict_proba(X_test), expected)
    clf.partial_fit(X[:200], y[:200])  # goes on training, converted to torch
    assert type(clf.model_).__name__ == "SpecNet" and clf.n_iter_ == 2
    assert clf.predict_proba(X_test).shape == expected.shape


@QUIET
def test_float64_stays_float64_through_early_stopping_and_files(backend, digits, tmp_path):
    X, X_test, y, _ = digits
    clf = lenet(backend=backend, max_iter=4, early_stopping=True, random_state=0)
    clf.fit(X[:300].astype(np.float64), y[:300])
    weights = clf.get_weights()
    assert all(w.dtype == np.float64 for w in weights.values())
    clf.save(tmp_path / "model.npz")
    restored = load(tmp_path / "model.npz")
    for key, value in weights.items():
        np.testing.assert_array_equal(restored.get_weights()[key], value, err_msg=key)
    np.testing.assert_array_equal(restored.predict_proba(X_test.astype(np.float64)),
                                  clf.predict_proba(X_test.astype(np.float64)))


@QUIET
def test_torch_fits_leave_the_global_rng_alone_and_agree_in_threads(digits):
    torch = pytest.importorskip("torch")
    pytest.importorskip("skorch")
    X, X_test, y, _ = digits
    arch = [S.Conv2d(6, 3), S.ReLU(), S.Flatten(), S.Linear(32), S.ReLU(), S.Dropout(0.5),
            S.Linear(10)]

    def fit(seed):
        return CNNClassifier(arch, backend="torch", max_iter=2, random_state=seed).fit(
            X[:300], y[:300]).predict_proba(X_test)

    torch.manual_seed(123)
    state = torch.get_rng_state()
    sequential = [fit(seed) for seed in (0, 1)]
    assert torch.equal(torch.get_rng_state(), state)
    threaded = [None, None]

    def run(i):
        threaded[i] = fit(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ours, theirs in zip(threaded, sequential, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert not np.allclose(sequential[0], sequential[1])
