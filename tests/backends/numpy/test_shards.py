"""Data-parallel training steps: backends/numpy/shards.py (replicas, synchronized
batch normalization, the gradients added up, failures)."""

import pickle

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sklearn_cnn import CNNClassifier
from sklearn_cnn import layers as S
from sklearn_cnn._weights import init_weights
from sklearn_cnn.backends import TrainingConfig
from sklearn_cnn.backends.numpy import BACKEND, shards
from sklearn_cnn.backends.numpy import layers as L
from sklearn_cnn.backends.numpy.losses import softmax_cross_entropy

#: batch normalization of maps and of vectors, inside a residual block and outside,
#: shifted and im2col convolutions, a 2x2 and a 3x3 pool
SPECS = (S.Conv2d(4, 3, padding=1), S.BatchNorm(), S.ReLU(), S.MaxPool2d(2),
         S.Residual((S.Conv2d(12, 3, padding=1, bias=False), S.BatchNorm(), S.ReLU(),
                     S.Conv2d(12, 3, padding=1, bias=False), S.BatchNorm()),
                    (S.Conv2d(12, 1, bias=False), S.BatchNorm())),
         S.MaxPool2d(3, stride=1), S.Flatten(), S.Linear(8), S.BatchNorm(), S.Tanh(),
         S.Linear(3))
SHAPE = (2, 8, 8)


def build(dtype=np.float64, specs=SPECS):
    weights = init_weights(specs, SHAPE, np.random.default_rng(0))
    return BACKEND.build(specs, SHAPE, weights, dtype=dtype, config=TrainingConfig())


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *SHAPE)), rng.integers(0, 3, n)


def whole_step(model, X, y):
    """The unsharded step: the model's gradients and buffers afterwards."""
    _, dout = softmax_cross_entropy(model.forward(X, training=True), y)
    model.backward(dout)
    return _state(model)


def sharded_step(model, X, y, workers, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_VALUES", 1)  # shard even these tiny batches
    with shards.Shards(model, workers) as steps:
        _, dout = softmax_cross_entropy(steps.forward(X), y)
        steps.backward(dout)
    return _state(model)


def _state(model):
    return {f"{layer.key}.{name}": array.copy() for layer in model.layers()
            for name, array in {**layer.grads, **layer.buffers}.items()}


@pytest.mark.parametrize("n, workers", [(8, 2), (7, 2), (9, 3)])
def test_a_sharded_step_computes_the_whole_batch_step(n, workers, monkeypatch):
    """Gradients and BatchNorm's running statistics are the whole batch's (its
    statistics summed over the shards, not each shard's own), also for shards of
    unequal sizes."""
    X, y = data(n)
    expected = whole_step(build(), X, y)
    got = sharded_step(build(), X, y, workers, monkeypatch)
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-10, atol=1e-12,
                                   err_msg=key)


def test_shards_without_synchronized_statistics_would_differ(monkeypatch):
    """The check above can fail: normalizing each shard by its own statistics gives
    other gradients."""
    X, y = data(8)
    expected = whole_step(build(), X, y)
    monkeypatch.setattr(L.BatchNorm, "_batch_sum", lambda self, values: values)
    monkeypatch.setattr(shards.ShardMember, "batch", property(lambda self: 4))
    got = sharded_step(build(), X, y, 2, monkeypatch)
    assert not np.allclose(got["0.weight"], expected["0.weight"])


def test_replicas_share_the_weights_and_keep_their_own_gradients_and_caches():
    model = build()
    replica = model.replica()
    for mine, theirs in zip(model.layers(), replica.layers(), strict=True):
        for name in mine.params:
            assert theirs.params[name] is mine.params[name]
            assert theirs.grads[name] is not mine.grads[name]
        for name in mine.buffers:
            assert theirs.buffers[name] is mine.buffers[name]
    assert replica.optimizer is None and model.optimizer is not None
    X, _ = data(4)
    replica.forward(X, training=True)
    assert all(layer.cache is None for layer in model.all_layers())


def test_the_model_keeps_no_shard_and_pickles_after_a_sharded_epoch(monkeypatch):
    model = build()
    monkeypatch.setattr(shards, "SHARD_VALUES", 1)
    X, y = data(16)
    with threadpool_limits(limits=2, user_api="blas"):
        batch = [_batch(X, y)]
        BACKEND.train_epoch(model, batch, seed=0)
    norms = [layer for layer in model.all_layers() if isinstance(layer, L.BatchNorm)]
    assert all(norm.shard is None for norm in norms)
    pickle.loads(pickle.dumps(model))


def _batch(X, y):
    from sklearn_cnn.backends._base import Batch

    return Batch(X, y, None, 0.01)


def test_each_replica_draws_its_own_dropout_masks(monkeypatch):
    specs = (S.Flatten(), S.Dropout(0.5), S.Linear(3))
    model = build(specs=specs)
    monkeypatch.setattr(shards, "SHARD_VALUES", 1)
    X = np.ones((8, *SHAPE))
    with shards.Shards(model, 2) as steps:
        steps.seed_dropout(0)
        dropouts = [_dropout(replica) for replica in steps.replicas]
        steps.forward(X)
        first, second = (dropout.cache for dropout in dropouts)
    assert not np.array_equal(first, second)
    # the first replica's masks are the ones the unsharded network draws
    model.seed_dropout(0)
    model.forward(X[:4], training=True)
    np.testing.assert_array_equal(_dropout(model).cache, first)


def _dropout(network):
    return next(layer for layer in network.all_layers() if isinstance(layer, L.Dropout))


def test_a_failing_shard_raises_its_error_and_no_shard_waits_forever(monkeypatch):
    model = build()
    monkeypatch.setattr(shards, "SHARD_VALUES", 1)
    X, _ = data(8)
    with shards.Shards(model, 2) as steps:
        conv = steps.replicas[1].all_layers()[0]

        def failing(x, training):
            raise ValueError("shard 1 failed")

        monkeypatch.setattr(conv, "forward", failing)
        # shard 0 waits at the first BatchNorm's sum for shard 1, which never comes
        with pytest.raises(ValueError, match="shard 1 failed"):
            steps.forward(X)


def test_shard_count_follows_the_size_of_the_work():
    widest = 12_544  # 16 maps of 28x28
    assert shards.shard_count(128, widest, 2) == 2
    assert shards.shard_count(32, widest, 2) == 1
    assert shards.shard_count(128, widest, 1) == 1
    assert shards.shard_count(1, 10**9, 4) == 1  # never a shard without images


def test_a_fit_in_shards_is_the_fit_in_one_pass_up_to_rounding(monkeypatch):
    """Through the estimator, float64 images (so a float64 network): the sharded
    epochs train the same network as whole batches do, with BLAS given back."""
    rng = np.random.default_rng(0)
    X, y = rng.random((64, 1, 8, 8)), np.arange(64) % 3
    arch = [S.Conv2d(4, 3, padding=1), S.BatchNorm(), S.ReLU(), S.MaxPool2d(2),
            S.Flatten(), S.Linear(3)]
    fits = {}
    with threadpool_limits(limits=2, user_api="blas"):
        for values in (1, 10**12):
            monkeypatch.setattr(shards, "SHARD_VALUES", values)
            fits[values] = CNNClassifier(arch=arch, max_iter=3, batch_size=16, augment=None,
                                         test_time_augment=None, random_state=0).fit(X, y)
    np.testing.assert_allclose(fits[1].loss_curve_, fits[10**12].loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(fits[1].predict_proba(X), fits[10**12].predict_proba(X),
                               rtol=1e-8, atol=1e-10)


def test_a_fit_in_shards_is_reproducible_bit_for_bit(monkeypatch):
    """Each shard runs on one thread with single-threaded BLAS and the shards' sums
    are added in shard order, so the same seed gives the same network."""
    rng = np.random.default_rng(1)
    X, y = rng.random((48, 2, 8, 8)).astype(np.float32), np.arange(48) % 3
    arch = [S.Conv2d(4, 3, padding=1), S.BatchNorm(), S.ReLU(), S.Flatten(),
            S.Dropout(0.3), S.Linear(3)]
    monkeypatch.setattr(shards, "SHARD_VALUES", 1)
    with threadpool_limits(limits=2, user_api="blas"):
        fits = [CNNClassifier(arch=arch, max_iter=2, batch_size=16, random_state=0).fit(X, y)
                for _ in range(2)]
    for key, value in fits[0].get_weights().items():
        np.testing.assert_array_equal(fits[1].get_weights()[key], value)
