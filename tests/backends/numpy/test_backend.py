"""The NumPy backend: backends/numpy/backend.py (training, snapshots, BLAS threads)."""

import io
import pickle
import threading
from dataclasses import replace

import numpy as np
import pytest
from backends.spec_cases import numeric_grad
from recipes import lenet

from sklearn_cnn import CNNClassifier
from sklearn_cnn import layers as S
from sklearn_cnn._weights import init_weights
from sklearn_cnn.backends import TrainingConfig
from sklearn_cnn.backends._base import Batch
from sklearn_cnn.backends.numpy import BACKEND, Network, shards
from sklearn_cnn.backends.numpy import backend as numpy_backend
from sklearn_cnn.persistence import skops_trusted_types

SPECS = (S.Conv2d(3, 3, padding=1), S.BatchNorm(), S.ReLU(), S.MaxPool2d(2), S.Flatten(),
         S.Dropout(0.2), S.Linear(4))
SHAPE = (1, 6, 6)


def build(config=None, dtype=np.float32, specs=SPECS, shape=SHAPE):
    weights = init_weights(specs, shape, np.random.default_rng(0))
    return BACKEND.build(specs, shape, weights, config=config, dtype=dtype)


def batches(sizes, seed=0, learning_rate=0.01):
    rng = np.random.default_rng(seed)
    return [Batch(rng.normal(size=(n, *SHAPE)).astype(np.float32), rng.integers(0, 4, n),
                  None, learning_rate) for n in sizes]


def test_build_runs_on_the_cpu_only():
    with pytest.raises(ValueError, match=r"runs on the CPU; got device='cuda'.*backend='torch'"):
        build_on("cuda")
    assert isinstance(build_on("auto"), Network) and isinstance(build_on("cpu"), Network)
    assert BACKEND.device_for("cuda") == BACKEND.device_for("auto") == "cpu"
    X, y = np.zeros((4, 6, 6)), [0, 1, 0, 1]
    with pytest.raises(ValueError, match="CPU"):
        CNNClassifier(device="cuda").fit(X, y)


def build_on(device):
    weights = init_weights(SPECS, SHAPE, np.random.default_rng(0))
    return BACKEND.build(SPECS, SHAPE, weights, device=device)


def test_build_computes_in_the_dtype_asked_for():
    for dtype in (np.float32, np.float64):
        model = build(dtype=dtype)
        assert BACKEND.dtype(model) == dtype
        assert all(w.dtype == dtype for w in BACKEND.get_weights(model).values())
        assert BACKEND.predict_output(model, np.zeros((2, *SHAPE), dtype)).dtype == np.float64


def test_configure_keeps_the_optimizer_state_only_when_the_optimizer_is_the_same():
    model = build(TrainingConfig(solver="adam"))
    BACKEND.train_epoch(model, batches([5]), seed=0)
    optimizer = model.optimizer
    assert optimizer.t == 1
    # the loss and the learning rate may change under a running optimizer
    for change in ({"learning_rate_init": 0.5}, {"alpha": 0.1}, {"max_grad_norm": 1.0},
                   {"label_smoothing": 0.1}):
        config = replace(model.config, **change)
        BACKEND.configure(model, config, keep_state=True)
        assert model.optimizer is optimizer and optimizer.t == 1 and model.config == config
    # asked not to keep it, or another optimizer: a fresh one
    BACKEND.configure(model, model.config, keep_state=False)
    assert model.optimizer is not optimizer and model.optimizer.t == 0
    for change in ({"beta_1": 0.5}, {"solver": "sgd"}, {"frozen_layers": 1}):
        BACKEND.train_epoch(model, batches([5]), seed=0)
        optimizer = model.optimizer
        BACKEND.configure(model, replace(model.config, **change), keep_state=True)
        assert model.optimizer is not optimizer, change
    assert type(model.optimizer).__name__ == "SGDOptimizer"


def test_frozen_layers_are_neither_trained_nor_decayed():
    model = build(TrainingConfig(frozen_layers=1, alpha=0.1))
    trained = {f"{layer.key}.{name}" for layer, name in model.trained}
    assert trained == {"1.weight", "1.bias", "6.weight", "6.bias"}
    assert {f"{layer.key}.{name}" for layer, name in model.decayed} == {"6.weight"}
    before = BACKEND.get_weights(model)
    BACKEND.train_epoch(model, batches([5, 5]), seed=0)
    after = BACKEND.get_weights(model)
    np.testing.assert_array_equal(after["0.weight"], before["0.weight"])
    assert not np.array_equal(after["6.weight"], before["6.weight"])


def test_snapshot_and_restore_round_trip_exactly():
    model = build()
    BACKEND.train_epoch(model, batches([4, 4]), seed=0)
    state = BACKEND.snapshot(model)
    once = BACKEND.train_epoch(model, batches([4, 4], seed=1), seed=1)
    trained = BACKEND.get_weights(model)
    BACKEND.restore(model, state)
    # the snapshot is a copy: training after it did not change it
    for key, value in state[0].items():
        np.testing.assert_array_equal(BACKEND.get_weights(model)[key], value)
    # weights, BatchNorm statistics and the optimizer's moments all came back: the
    # same epoch again gives the same loss and weights, bit for bit
    assert BACKEND.train_epoch(model, batches([4, 4], seed=1), seed=1) == once
    for key, value in BACKEND.get_weights(model).items():
        np.testing.assert_array_equal(value, trained[key], err_msg=key)


def test_train_epoch_returns_the_mean_loss_weighted_by_batch_sizes():
    model = build(TrainingConfig(alpha=0.0))
    heard = []
    sizes = [7, 2, 1]
    mean = BACKEND.train_epoch(model, batches(sizes), seed=0, batch_end=heard.append)
    assert len(heard) == 3 and len(set(heard)) == 3
    assert mean == pytest.approx(np.dot(heard, sizes) / sum(sizes), rel=1e-12)
    assert mean != pytest.approx(np.mean(heard), rel=1e-6)
    # the steps were taken with each batch's own learning rate
    still = build(TrainingConfig(alpha=0.0))
    before = BACKEND.get_weights(still)
    BACKEND.train_epoch(still, batches([4], learning_rate=0.0), seed=0)
    for key in ("0.weight", "6.weight"):
        np.testing.assert_array_equal(BACKEND.get_weights(still)[key], before[key])
    assert all(not layer._caches for layer in model.all_layers())  # caches dropped


class Recorder(pickle.Unpickler):
    """Unpickles, noting every class the pickle names."""

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.found = set()

    def find_class(self, module, name):
        found = super().find_class(module, name)
        self.found.add(found)
        return found


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_portable_types_cover_every_class_a_fitted_network_holds(solver):
    """A skops file of a NumPy model trusts ``portable_types()`` and the layer specs: a
    fitted network of every layer kind, its optimizer and its settings are made of
    them, of NumPy's and of Python's own classes, and of nothing else."""
    specs = (S.Conv2d(16, 3, padding=1), S.BatchNorm(), S.LeakyReLU(), S.MaxPool2d(2),
             S.Conv2d(4, 3, stride=2), S.Tanh(), S.MaxPool2d(2, 1),
             S.Residual((S.Conv2d(4, 3, padding=1), S.Sigmoid()), (S.Conv2d(4, 1),)),
             S.AvgPool2d(2, 1), S.AdaptiveAvgPool2d(2), S.Dropout(0.1), S.GlobalAvgPool2d(),
             S.Flatten(), S.Linear(4), S.ReLU(), S.Linear(4))
    shape = (16, 16, 16)
    model = build(TrainingConfig(solver=solver), specs=specs, shape=shape)
    rng = np.random.default_rng(0)
    batch = Batch(rng.normal(size=(3, *shape)).astype(np.float32), np.arange(3), None, 0.01)
    BACKEND.train_epoch(model, [batch], seed=0)
    recorder = Recorder(pickle.dumps(BACKEND.to_portable(model)))
    recorder.load()
    ours = {cls for cls in recorder.found if cls.__module__.startswith("sklearn_cnn")}
    assert {cls.__name__ for cls in ours} >= {"Network", "ShiftedConv2d", "Conv2d",
                                              "HalvingMaxPool2d", "Residual", "TrainingConfig"}
    # the layer specs it was built from are trusted apart (layers.SPEC_TYPES)
    specs_held = {cls for cls in ours if cls.__module__ == "sklearn_cnn.layers"}
    assert specs_held <= set(S.SPEC_TYPES)
    assert ours - specs_held <= set(BACKEND.portable_types())
    trusted = set(skops_trusted_types())
    assert {f"{cls.__module__}.{cls.__qualname__}" for cls in ours} <= trusted
    others = {cls.__module__.split(".")[0] for cls in recorder.found - ours}
    assert others <= {"numpy", "builtins", "copyreg", "_codecs"}, others
    assert BACKEND.from_portable(specs, shape, model) is model


def test_gradient_with_respect_to_the_images_is_the_finite_difference_one():
    model = build(dtype=np.float64)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, *SHAPE))
    output_grad = rng.normal(size=(3, 4))
    before = BACKEND.get_weights(model)
    activation, gradient = BACKEND.gradient(model, X, output_grad)
    np.testing.assert_array_equal(activation, X)

    def score():
        return float(np.sum(BACKEND.predict_output(model, X) * output_grad))

    np.testing.assert_allclose(gradient, numeric_grad(score, X), rtol=1e-6, atol=1e-8)
    # at a layer: that layer's output, and the gradient from there on
    activation, gradient = BACKEND.gradient(model, X, output_grad, key="3")
    np.testing.assert_array_equal(activation, BACKEND.forward(model, X, "3"))
    tail = Network(SPECS[4:], activation.shape[1:], {
        f"{int(k.split('.')[0]) - 4}.{k.split('.', 1)[1]}": v for k, v in before.items()
        if int(k.split(".")[0]) >= 4}, dtype=np.float64)

    def tail_score():
        return float(np.sum(tail.forward(activation, False) * output_grad))

    np.testing.assert_allclose(gradient, numeric_grad(tail_score, activation), rtol=1e-6,
                               atol=1e-8)
    for key, value in BACKEND.get_weights(model).items():  # the weights did not change
        np.testing.assert_array_equal(value, before[key])


# --- BLAS threads: shifted convolutions and prediction passes ---

def _blas_threads():
    from threadpoolctl import threadpool_info

    return frozenset(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def _spy_on_steps(monkeypatch, record):
    """Call ``record(steps)`` at every NumPy training step (``steps`` runs its passes,
    whole or in shards); returns the list of results."""
    from sklearn_cnn.backends.numpy import backend as numpy_backend

    seen, step = [], numpy_backend._train_step

    def spying_step(model, steps, batch):
        seen.append(record(steps))
        return step(model, steps, batch)

    monkeypatch.setattr(numpy_backend, "_train_step", spying_step)
    return seen


def test_shifted_convolutions_train_on_threads_with_blas_single_threaded(digits, monkeypatch):
    """A network with shifted convolutions trains with their blocks on as many threads
    as BLAS had and BLAS at one thread meanwhile; afterwards BLAS has its threads
    back, and the fit is the one a single thread makes, up to rounding."""
    from threadpoolctl import threadpool_limits

    from sklearn_cnn.backends.numpy.threads import block_workers

    X, X_test, y, _ = digits
    arch = [S.Conv2d(16, 3, padding=1), S.ReLU(), S.Conv2d(16, 3, padding=1), S.ReLU(),
            S.GlobalAvgPool2d(), S.Linear(10)]
    seen = _spy_on_steps(monkeypatch, lambda _: (block_workers(), _blas_threads()))
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
    from threadpoolctl import threadpool_limits

    from sklearn_cnn.backends.numpy.threads import block_workers

    X, _, y, _ = digits
    arch = [S.Conv2d(16, 3, padding=1), S.ReLU(), S.GlobalAvgPool2d(), S.Linear(10)]
    monkeypatch.setattr(shards, "SHARD_VALUES", 1)  # large enough to shard, anyway
    seen = _spy_on_steps(monkeypatch, lambda steps: (block_workers(), type(steps)))
    with threadpool_limits(limits=2, user_api="blas"):
        thread = threading.Thread(
            target=lambda: lenet(arch=arch, max_iter=1, random_state=0).fit(X, y))
        thread.start()
        thread.join()
        assert seen and set(seen) == {(1, numpy_backend._Unsharded)}
        assert _blas_threads() == {2}


def test_large_batches_train_in_shards_with_blas_single_threaded(digits, monkeypatch):
    """Batches whose shards hold ``shards.SHARD_VALUES`` values of the widest
    activation or more train in one shard per BLAS thread, BLAS at one thread
    meanwhile and given back afterwards; smaller batches train whole, with BLAS's
    threads."""
    from threadpoolctl import threadpool_limits

    X, _, y, _ = digits
    arch = [S.Conv2d(8, 3, padding=1), S.ReLU(), S.Flatten(), S.Linear(10)]  # 512 values
    monkeypatch.setattr(shards, "SHARD_VALUES", 512 * 16)  # shards of 16 images or more
    seen = _spy_on_steps(monkeypatch, lambda steps: (type(steps), _blas_threads()))
    for batch_size, expected in ((64, (shards.Shards, frozenset({1}))),
                                 (16, (numpy_backend._Unsharded, frozenset({2})))):
        seen.clear()
        with threadpool_limits(limits=2, user_api="blas"):
            if _blas_threads() != {2}:
                pytest.skip("this BLAS does not run 2 threads")
            lenet(arch=arch, max_iter=1, batch_size=batch_size, random_state=0).fit(X, y)
            assert _blas_threads() == {2}
        assert set(seen) == {expected}


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


@pytest.fixture(scope="module")
def fitted_lenet(digits):
    """One epoch of LeNet on the digits, shared by the prediction tests (which only
    read it): one forward pass per prediction pass, no test-time copies."""
    X, _, y, _ = digits
    return lenet(max_iter=1, random_state=0, test_time_augment=None).fit(X, y)


def test_prediction_passes_run_on_threads_with_blas_single_threaded(digits, fitted_lenet,
                                                                    monkeypatch):
    """Prediction shares its passes out to as many threads as BLAS had, with BLAS at
    one thread meanwhile and given back afterwards; the scores are the ones serial
    passes make with BLAS at one thread, bit for bit, whether one pass is predicted
    or several."""
    from threadpoolctl import threadpool_limits

    _, X_test, _, _ = digits
    clf = fitted_lenet
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
    # one image alone is a pass of one: the same up to rounding
    np.testing.assert_allclose(clf.predict_proba(many[:1]), threaded[:1], atol=1e-6)
    # whole passes predicted alone (an image's place in its pass may change its last
    # bits: BLAS's kernels treat the columns at a tile's edge apart)
    np.testing.assert_array_equal(clf.predict_proba(many[512:1536]), threaded[512:1536])


def test_a_call_smaller_than_two_passes_is_split_for_two_threads(digits, fitted_lenet,
                                                                monkeypatch):
    """300 digits would fit one pass of 512: they are predicted in passes of at most
    half of them (128, 128 and 64 padded), the same with one BLAS thread or two."""
    from threadpoolctl import threadpool_limits

    from sklearn_cnn.backends.numpy import backend as numpy_backend

    _, X_test, _, _ = digits
    seen = _spy_on_passes(monkeypatch, lambda: None)
    lengths, fixed = [], numpy_backend.fixed_size_batch
    monkeypatch.setattr(numpy_backend, "fixed_size_batch",
                        lambda X, begin, size, dtype: lengths.append(size) or fixed(
                            X, begin, size, dtype))
    X = X_test[:300]
    with threadpool_limits(limits=1, user_api="blas"):
        serial = fitted_lenet.predict_proba(X)
    assert sorted(lengths) == [64, 128, 128] and len(seen) == 3
    with threadpool_limits(limits=2, user_api="blas"):
        np.testing.assert_array_equal(fitted_lenet.predict_proba(X), serial)


def test_predictions_in_other_threads_leave_blas_alone(digits, fitted_lenet, monkeypatch):
    """From another thread, prediction runs its passes there, serially, and leaves
    BLAS's threads as they were (OpenBLAS would not take them back)."""
    from threadpoolctl import threadpool_limits

    _, X_test, _, _ = digits
    clf = fitted_lenet
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
