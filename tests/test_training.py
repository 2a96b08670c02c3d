"""Schedules, stopping rules, early stopping, augmentation, clipping, progress."""

import math
import sys
import warnings

import numpy as np
import pytest
from recipes import lenet
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn._training import Schedule, Stopper
from sklearn_cnn.backends.numpy.backend import clip_grad_norm


def test_schedules():
    lr = 0.1
    constant = Schedule("constant", lr, max_iter=10)
    assert constant.lr(5, 3, 10, 1000) == lr
    assert Schedule("invscaling", lr, 10, power_t=0.5).lr(1, 0, 10, 400) == pytest.approx(
        lr / 20)
    assert Schedule("invscaling", lr, 10).lr(0, 5, 10, 0) == lr  # first epoch: as given
    cosine = Schedule("cosine", lr, max_iter=10)
    assert cosine.lr(0, 0, 4, 0) == pytest.approx(lr)
    assert cosine.lr(5, 0, 4, 0) == pytest.approx(lr / 2)
    assert cosine.lr(9, 3, 4, 0) < lr / 100
    onecycle = Schedule("onecycle", lr, max_iter=10)
    rates = [onecycle.lr(e, b, 10, 0) for e in range(10) for b in range(10)]
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(lr / 25) and max(rates) == pytest.approx(lr, rel=1e-3)
    assert 25 <= peak <= 31 and rates[-1] < lr / 1000
    adaptive = Schedule("adaptive", lr, max_iter=10, tol=0.01)
    for score in (0.5, 0.6, 0.6, 0.6):  # two epochs without progress: divide by 5
        adaptive.end_epoch(score)
    assert adaptive.current == pytest.approx(lr / 5)


def test_stopper_follows_mlp_rule():
    stopper = Stopper(tol=0.1, n_iter_no_change=2)
    assert not stopper.update(0, 1.0)
    assert not stopper.update(1, 1.05)   # better, but not by tol: one strike
    assert stopper.best_epoch == 1
    assert stopper.update(2, 1.08)       # second strike: stop


def test_training_loss_stopping_and_convergence_warning(digits):
    X, _, y, _ = digits
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        lenet(max_iter=3, random_state=0).fit(X[:200], y[:200])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = lenet(max_iter=100, tol=0.5, n_iter_no_change=2,
                            random_state=0).fit(X[:200], y[:200])
    assert clf.n_iter_ < 100 and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None


def test_early_stopping_restores_the_best_epoch(backend, digits):
    X, X_test, y, y_test = digits
    clf = lenet(backend=backend, early_stopping=True, validation_fraction=0.2,
                        n_iter_no_change=3, max_iter=40, learning_rate_init=0.01,
                        random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < 40
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    assert clf.best_loss_ is None
    assert clf.score(X_test, y_test) > 0.9


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive", "cosine", "onecycle"])
def test_every_schedule_trains(schedule, backend, digits):
    X, X_test, y, y_test = digits
    # invscaling is MLPClassifier's: 1/sqrt(samples seen) decays fast (to 0.004 of
    # learning_rate_init after one epoch of 600), so it is paired with SGD and a gentler
    # power_t and reaches less in 8 epochs
    solver = {"solver": "sgd", "learning_rate_init": 0.1, "power_t": 0.25} \
        if schedule == "invscaling" else {"learning_rate_init": 0.01}
    clf = lenet(backend=backend, learning_rate=schedule, max_iter=8, random_state=0,
                        **solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:600], y[:600])
    assert clf.score(X_test, y_test) > (0.5 if schedule == "invscaling" else 0.8)


def test_augment_runs_at_training_only_on_both_backends(backend, digits):
    X, X_test, y, y_test = digits
    calls = []

    def spy(batch):
        calls.append(batch.shape)
        return batch[:, :, :, ::-1]

    clf = lenet(backend=backend, augment=spy, max_iter=2, batch_size=200,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:400], y[:400])
    assert len(calls) == 4 and calls[0] == (200, 1, 8, 8)
    clf.predict(X_test)
    assert len(calls) == 4
    with pytest.raises(ValueError, match="must return a batch of shape"):
        lenet(backend=backend, augment=lambda b: b[:1], max_iter=1).fit(X[:50], y[:50])
    shifted = lenet(backend=backend, augment="shift", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert shifted.fit(X, y).score(X_test, y_test) > 0.9


def test_gradient_clipping():
    grads = [np.full(3, 3.0), np.full(4, 4.0)]
    norm = math.sqrt(3 * 9 + 4 * 16)
    clip_grad_norm(grads, 1.0)
    np.testing.assert_allclose(np.sqrt(sum((g ** 2).sum() for g in grads)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(grads[0][0] / grads[1][0], 3 / 4)
    assert norm > 1


def test_clipped_training_and_divergence(backend, digits):
    X, _, y, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clipped = lenet(backend=backend, max_grad_norm=0.5, max_iter=3,
                                random_state=0).fit(X[:300], y[:300])
    assert np.isfinite(clipped.loss_curve_).all()
    with pytest.warns(ConvergenceWarning, match="diverged at epoch"):
        blown = lenet(backend=backend, solver="sgd", learning_rate_init=1e6,
                              max_iter=5, random_state=0).fit(X[:300], y[:300])
    assert np.isfinite(blown.predict_proba(X[:10])).all()


def test_verbose_prints_a_table(capsys, digits):
    X, _, y, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lenet(verbose=1, max_iter=2, early_stopping=True,
                      random_state=0).fit(X[:300], y[:300])
    out = capsys.readouterr().out
    assert "train loss" in out and "valid score" in out and "learning rate" in out
    assert "Total params" in out


def test_verbose_2_adds_a_progress_bar_that_changes_nothing(capsys, backend, digits,
                                                             monkeypatch):
    X, _, y, _ = digits
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for verbose in (0, 2):
            fits[verbose] = lenet(backend=backend, verbose=verbose, max_iter=2,
                                          batch_size=50, random_state=0).fit(X[:300], y[:300])
    err = capsys.readouterr().err
    assert "epoch 1:" in err and "epoch 2:" in err and "/6 " in err  # tqdm's bars
    for key, value in fits[0].get_weights().items():
        np.testing.assert_array_equal(fits[2].get_weights()[key], value, err_msg=key)

    # every batch reaches the bar, with its loss (tqdm itself redraws when it likes)
    bars = []

    class Bar:
        def __init__(self, total, epoch):
            self.total, self.epoch, self.losses, self.closed = total, epoch, [], False
            bars.append(self)

        def set_postfix(self, loss, refresh):
            self.losses.append(float(loss))

        def update(self):
            pass

        def close(self):
            self.closed = True

    monkeypatch.setattr("sklearn_cnn._training.progress_bar", Bar)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lenet(backend=backend, verbose=2, max_iter=2, batch_size=50,
                      random_state=0).fit(X[:300], y[:300])
    assert [(b.total, b.epoch, len(b.losses), b.closed) for b in bars] == [
        (6, 1, 6, True), (6, 2, 6, True)]
    assert all(np.isfinite(b.losses).all() for b in bars)
    monkeypatch.undo()

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    with pytest.warns(UserWarning, match="pip install tqdm"):
        lenet(backend=backend, verbose=2, max_iter=1).fit(X[:100], y[:100])
    assert "train loss" in capsys.readouterr().out


def test_init_from_reuses_every_matching_layer_across_backends(backend, digits):
    X, _, y, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        source = lenet(backend="numpy", max_iter=15, random_state=0).fit(X, y)
        # fine-tune on a 2-class task: the convolutions and hidden layers carry over,
        # the output layer (10 -> 2 classes) starts fresh
        tuned = lenet(backend=backend, init_from=source, max_iter=1,
                              learning_rate_init=1e-9, random_state=1).fit(X, y >= 5)
    source_weights, tuned_weights = source.get_weights(), tuned.get_weights()
    for key in ("0.weight", "2.weight", "6.weight", "8.weight"):
        np.testing.assert_allclose(tuned_weights[key], source_weights[key], atol=1e-5)
    assert tuned_weights["10.weight"].shape == (2, 84)
    # a layer is reused whole or not at all: with 50 hidden units before it, the output
    # layer's (10, 50) weight cannot come over, so neither does its (10,) bias
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        narrower = lenet(backend=backend, init_from=source, hidden_units=(120, 50),
                                 max_iter=1, learning_rate_init=1e-9, random_state=1).fit(X, y)
    np.testing.assert_allclose(narrower.get_weights()["6.weight"], source_weights["6.weight"],
                               atol=1e-5)
    np.testing.assert_allclose(narrower.get_weights()["10.bias"], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="init_from"):
        lenet(init_from="model.pkl").fit(X[:20], y[:20])


def test_transform_gives_penultimate_features_for_a_pipeline(backend, digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, X_test, y, y_test = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cnn = lenet(backend=backend, max_iter=15, random_state=0).fit(X, y)
    features = cnn.transform(X_test)
    assert features.shape == (len(X_test), 84)  # LeNet's last hidden layer
    head = LogisticRegression(max_iter=2000).fit(cnn.transform(X), y)
    assert head.score(features, y_test) > 0.9
    pipe = make_pipeline(cnn, LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert pipe.fit(X, y).score(X_test, y_test) > 0.9


def test_freeze_trains_only_the_head(backend, digits):
    X, _, y, _ = digits
    source = lenet(max_iter=5, random_state=0).fit(X, y)
    tuned = lenet(backend=backend, init_from=source, freeze="features",
                          max_iter=3, random_state=1).fit(X, y % 3)
    before, after = source.get_weights(), tuned.get_weights()
    for key in ("0.weight", "0.bias", "2.weight"):  # convolutions: untouched
        np.testing.assert_allclose(after[key], before[key], atol=1e-6)
    assert not np.allclose(after["6.weight"], before["6.weight"])  # dense layers trained
    two = lenet(backend=backend, freeze=1, max_iter=2, random_state=0).fit(X, y)
    assert two.n_iter_ == 2
    with pytest.raises(ValueError, match="nothing would train"):
        lenet(backend=backend, freeze=50, max_iter=1).fit(X[:50], y[:50])


def test_interrupted_fit_keeps_the_completed_epochs(backend, digits):
    X, X_test, y, _ = digits
    calls = []

    def interrupt_in_epoch_three(batch):
        calls.append(1)
        if len(calls) == 5:  # 2 batches an epoch: the first of epoch 3
            raise KeyboardInterrupt
        return batch

    reference = lenet(backend=backend, max_iter=2, batch_size=200, random_state=0)
    reference.fit(X[:400], y[:400])
    clf = lenet(backend=backend, augment=interrupt_in_epoch_three, max_iter=10,
                        batch_size=200, random_state=0)
    with pytest.warns(UserWarning, match="interrupted during epoch 3"):
        clf.fit(X[:400], y[:400])
    assert clf.n_iter_ == 2
    np.testing.assert_allclose(clf.predict_proba(X_test), reference.predict_proba(X_test),
                               atol=1e-6)


def test_a_failing_fit_leaves_no_half_fitted_estimator(backend, digits):
    from sklearn.exceptions import NotFittedError

    X, _, y, _ = digits

    def broken(batch):
        raise RuntimeError("augmentation failed")

    clf = lenet(backend=backend, augment=broken, max_iter=2)
    with pytest.raises(RuntimeError, match="augmentation failed"):
        clf.fit(X[:100], y[:100])
    with pytest.raises(NotFittedError):
        clf.predict(X[:5])
    assert not [name for name in vars(clf) if name.endswith("_")]


def _blas_threads():
    from threadpoolctl import threadpool_info

    return frozenset(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def _spy_on_steps(monkeypatch, record):
    """Call ``record()`` at every NumPy training step; returns the list of results."""
    from sklearn_cnn.backends.numpy import backend as numpy_backend

    seen, step = [], numpy_backend._train_step

    def spying_step(model, batch):
        seen.append(record())
        return step(model, batch)

    monkeypatch.setattr(numpy_backend, "_train_step", spying_step)
    return seen


def test_shifted_convolutions_train_on_threads_with_blas_single_threaded(digits, monkeypatch):
    """A network with shifted convolutions trains with their blocks on as many threads
    as BLAS had and BLAS at one thread meanwhile; afterwards BLAS has its threads
    back, and the fit is the one a single thread makes, up to rounding."""
    from threadpoolctl import threadpool_limits

    from sklearn_cnn import layers as S
    from sklearn_cnn.backends.numpy import functional

    X, X_test, y, _ = digits
    arch = [S.Conv2d(16, 3, padding=1), S.ReLU(), S.Conv2d(16, 3, padding=1), S.ReLU(),
            S.GlobalAvgPool2d(), S.Linear(10)]
    seen = _spy_on_steps(monkeypatch, lambda: (functional._workers(), _blas_threads()))
    fits = {}
    for threads in (2, 1):
        seen.clear()
        with threadpool_limits(limits=threads, user_api="blas"):
            if _blas_threads() != {threads}:
                pytest.skip(f"this BLAS does not run {threads} threads")
            fits[threads] = lenet(arch=arch, max_iter=2, random_state=0).fit(X, y)
            assert _blas_threads() == {threads}  # given back
        assert set(seen) == {(threads, frozenset({1}))}
    np.testing.assert_allclose(fits[2].predict_proba(X_test), fits[1].predict_proba(X_test),
                               atol=1e-4)


def test_fits_in_other_threads_leave_blas_alone(digits, monkeypatch):
    """OpenBLAS raises its thread count only from the main thread, so a fit in another
    thread (a GridSearchCV on threads, say) runs the blocks serially and leaves BLAS's
    threads as they were."""
    import threading

    from threadpoolctl import threadpool_limits

    from sklearn_cnn import layers as S
    from sklearn_cnn.backends.numpy import functional

    X, _, y, _ = digits
    arch = [S.Conv2d(16, 3, padding=1), S.ReLU(), S.GlobalAvgPool2d(), S.Linear(10)]
    seen = _spy_on_steps(monkeypatch, functional._workers)
    with threadpool_limits(limits=2, user_api="blas"):
        thread = threading.Thread(
            target=lambda: lenet(arch=arch, max_iter=1, random_state=0).fit(X, y))
        thread.start()
        thread.join()
        assert seen and set(seen) == {1}
        assert _blas_threads() == {2}


def _spy_on_passes(monkeypatch, record):
    """Call ``record()`` at every NumPy prediction pass; returns the list of results."""
    from sklearn_cnn.backends.numpy import backend as numpy_backend

    seen, map_passes = [], numpy_backend.map_passes

    def spying_map(work, items, workers):
        def spying_work(item):
            seen.append(record())
            return work(item)
        return map_passes(spying_work, items, workers)

    monkeypatch.setattr(numpy_backend, "map_passes", spying_map)
    return seen


def test_prediction_passes_run_on_threads_with_blas_single_threaded(digits, monkeypatch):
    """Prediction shares its passes out to as many threads as BLAS had, with BLAS at
    one thread meanwhile and given back afterwards; the scores are the ones serial
    passes make with BLAS at one thread, bit for bit, whether one pass is predicted
    or several."""
    import threading

    from threadpoolctl import threadpool_limits

    X, X_test, y, _ = digits
    clf = lenet(max_iter=1, random_state=0).fit(X, y)
    many = np.concatenate([X_test] * 5)  # 2,250 digits: 5 passes of 512
    seen = _spy_on_passes(monkeypatch, lambda: (threading.get_ident(), _blas_threads()))
    with threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() != {2}:
            pytest.skip("this BLAS does not run 2 threads")
        threaded = clf.predict_proba(many)
        assert _blas_threads() == {2}  # given back
    assert len(seen) == 5 and {blas for _, blas in seen} == {frozenset({1})}
    assert len({ident for ident, _ in seen}) == 2
    seen.clear()
    with threadpool_limits(limits=1, user_api="blas"):
        serial = clf.predict_proba(many)
    assert {ident for ident, _ in seen} == {threading.get_ident()}
    np.testing.assert_array_equal(threaded, serial)
    np.testing.assert_array_equal(clf.predict_proba(many[:1]), threaded[:1])
    # whole passes predicted alone (an image's place in its pass may change its last
    # bits: BLAS's kernels treat the columns at a tile's edge apart)
    np.testing.assert_array_equal(clf.predict_proba(many[512:1536]), threaded[512:1536])


def test_predictions_in_other_threads_leave_blas_alone(digits, monkeypatch):
    """From another thread, prediction runs its passes there, serially, and leaves
    BLAS's threads as they were (OpenBLAS would not take them back)."""
    import threading

    from threadpoolctl import threadpool_limits

    X, X_test, y, _ = digits
    clf = lenet(max_iter=1, random_state=0).fit(X, y)
    expected = clf.predict(X_test)
    seen = _spy_on_passes(monkeypatch, threading.get_ident)
    results = {}
    with threadpool_limits(limits=2, user_api="blas"):
        thread = threading.Thread(target=lambda: results.update(
            labels=clf.predict(np.concatenate([X_test] * 3)), ident=threading.get_ident()))
        thread.start()
        thread.join()
        assert _blas_threads() == {2}
    assert set(seen) == {results["ident"]} and len(seen) == 3
    np.testing.assert_array_equal(results["labels"], np.concatenate([expected] * 3))
