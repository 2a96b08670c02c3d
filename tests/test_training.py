"""The training loop (_training.py): schedules, stopping rules, early stopping,
augmentation, clipping, interrupts, progress."""

import math
import sys
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from recipes import lenet
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import CNNClassifier
from sklearn_cnn._training import Schedule, Stopper, auto_batch_size, auto_epochs
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


@pytest.mark.parametrize("n_samples, batch_size, epochs", [
    (200, 32, 50),      # small sets: batches of 32 (at least 40 steps), at most 50 epochs
    (1437, 35, 50),     # the digits of a 5-fold split: n // 40
    (10_000, 128, 32),  # 128 from 5,120 images on; 2,500 steps / 79 an epoch
    (60_000, 128, 15),  # at least 15 epochs
    (20, 20, 50),       # never more than the samples
])
def test_auto_batch_size_and_epochs_plan_about_2500_steps(n_samples, batch_size, epochs):
    assert auto_batch_size("auto", n_samples) == batch_size
    assert auto_epochs("auto", n_samples, batch_size) == epochs
    assert auto_batch_size(64, n_samples) == min(64, n_samples)
    assert auto_epochs(7, n_samples, batch_size) == 7


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


# -- sample weights are relative ----------------------------------------------------

_SMALL = None


def _small_task():
    global _SMALL
    if _SMALL is None:
        rng = np.random.default_rng(0)
        X = rng.random((48, 1, 8, 8), dtype=np.float32)
        _SMALL = X, (X[:, 0, :4].mean(axis=(1, 2)) > X[:, 0, 4:].mean(axis=(1, 2))) * 1
    return _SMALL


def _tiny_net(backend):
    from sklearn_cnn.layers import Conv2d, Flatten, Linear, ReLU

    return CNNClassifier([Conv2d(2, 3), ReLU(), Flatten(), Linear(2)], backend=backend,
                         batch_size=16, max_iter=1, augment=None, shuffle=False,
                         learning_rate="constant", random_state=0)


@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
@settings(max_examples=10, deadline=None)
@given(exponent=st.integers(-300, 300), spread=st.integers(0, 6),
       zero_batch=st.booleans(), alpha=st.sampled_from([0.0, 1e-3]),
       seed=st.integers(0, 2**16))
def test_sample_weights_over_any_magnitude_train_as_their_mean_1_rescaling(
        backend_name, exponent, spread, zero_batch, alpha, seed):
    """Weights over many orders of magnitude (all equal tiny or huge, or spread over
    up to 6 decades, with a batch of zeros) train exactly as the same weights
    rescaled to mean 1. Weights count samples (scikit-learn's contract: an integer
    weight is that many copies), so their scale reaches the fit only through the L2
    penalty: the rescaled fit takes ``alpha`` times the mean weight."""
    if backend_name == "torch":
        pytest.importorskip("skorch")
    X, y = _small_task()
    rng = np.random.default_rng(seed)
    weights = 10.0 ** (exponent + rng.uniform(-spread, 0, len(y)))
    if zero_batch:
        weights[:16] = 0.0  # the first batch (unshuffled) weighs nothing
    mean = (weights / weights.max()).mean() * weights.max()
    assume(alpha == 0 or 1e-2 < mean < 1e6)  # else the penalty alone decides both fits
    first = _tiny_net(backend_name).set_params(alpha=alpha)
    second = _tiny_net(backend_name).set_params(alpha=alpha / mean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny weights with alpha > 0
        first.fit(X, y, sample_weight=weights)
    second.fit(X, y, sample_weight=weights / mean)
    assert np.isfinite(first.loss_curve_).all()
    for key, value in first.get_weights().items():
        np.testing.assert_allclose(value, second.get_weights()[key], rtol=1e-4, atol=1e-6)


def test_all_zero_sample_weight_is_refused(backend):
    X, y = _small_task()
    with pytest.raises(ValueError, match=r"non-zero|zero for every sample"):
        _tiny_net(backend).fit(X, y, sample_weight=np.zeros(len(y)))


def test_a_batch_of_zero_weights_is_skipped_not_nan(backend):
    X, y = _small_task()
    weights = np.ones(len(y))
    weights[:16] = 0.0
    clf = _tiny_net(backend).set_params(max_iter=2).fit(X, y, sample_weight=weights)
    assert np.isfinite(clf.loss_curve_).all() and clf.n_iter_ == 2


def test_partial_fit_from_two_threads_runs_in_turn(backend):
    """Fits of one estimator are serialized: every epoch of both threads is kept and
    nothing is corrupted."""
    import threading

    X, y = _small_task()
    clf = _tiny_net(backend)
    clf.partial_fit(X, y, classes=[0, 1])
    errors = []

    def train():
        try:
            for _ in range(3):
                clf.partial_fit(X, y)
        except Exception as exc:  # pragma: no cover - what the test guards against
            errors.append(exc)

    threads = [threading.Thread(target=train) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and clf.n_iter_ == 7 and len(clf.loss_curve_) == 7
    assert np.isfinite(clf.predict_proba(X)).all()


def test_early_stopping_on_fewer_held_out_images_than_classes(backend):
    """60 digits of 10 classes hold out 6 images: too few to stratify, so the split
    is a plain shuffled one (MLPClassifier trains on the same data)."""
    from sklearn_cnn.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    clf = CNNClassifier("lenet", backend=backend, early_stopping=True, max_iter=2,
                        random_state=0).fit(X[:60], y[:60])
    assert len(clf.validation_scores_) == 2


def test_tiny_weights_with_a_penalty_warn_that_the_penalty_outweighs_the_data():
    X, y = _small_task()
    with pytest.warns(UserWarning, match="penalty alpha=0.001 weighs 1e\\+12 times"):
        _tiny_net("numpy").set_params(alpha=1e-3).fit(X, y,
                                                      sample_weight=np.full(len(y), 1e-12))
