"""Canonical weights (_weights.py): keys, shapes, the L2 list and initialisation."""

import numpy as np
import pytest

from sklearn_cnn import layers as S
from sklearn_cnn._weights import decayed_keys, init_weights, walk, weight_shapes

#: a stem, then a residual block with a projection shortcut, then a dense head
SPECS = (S.Conv2d(4, 3, padding=1), S.BatchNorm(), S.ReLU(),
         S.Residual((S.Conv2d(8, 3, stride=2, padding=1), S.BatchNorm(), S.ReLU(),
                     S.Conv2d(8, 3, padding=1)),
                    (S.Conv2d(8, 1, stride=2, bias=False), S.BatchNorm())),
         S.ReLU(), S.GlobalAvgPool2d(), S.Linear(16), S.Tanh(), S.Linear(3))
SHAPE = (2, 8, 8)


def test_walk_visits_every_layer_blocks_first_then_their_insides():
    entries = list(walk(SPECS, SHAPE))
    assert [key for key, _, _, _ in entries] == [
        "0", "1", "2", "3", "3.body.0", "3.body.1", "3.body.2", "3.body.3",
        "3.shortcut.0", "3.shortcut.1", "4", "5", "6", "7", "8"]
    shapes = {key: shape for key, _, shape, _ in entries}
    assert shapes["3"] == shapes["3.body.0"] == shapes["3.shortcut.0"] == (4, 8, 8)
    assert shapes["3.body.3"] == (8, 4, 4) and shapes["4"] == (8, 4, 4)
    assert shapes["6"] == (8,) and shapes["8"] == (16,)
    # the activation that decides a layer's initialisation: the next one in its own
    # sequence (inside a block, the block's), or None
    following = {key: type(act).__name__ if act else None for key, _, _, act in entries}
    assert following["0"] == "ReLU" and following["3.body.0"] == "ReLU"
    assert following["3.body.3"] is None and following["3.shortcut.0"] is None
    assert following["6"] == "Tanh" and following["8"] is None


def test_weight_shapes_name_every_array_as_torch_would():
    shapes = weight_shapes(SPECS, SHAPE)
    assert shapes == {
        "0.weight": (4, 2, 3, 3), "0.bias": (4,),
        "1.weight": (4,), "1.bias": (4,), "1.running_mean": (4,), "1.running_var": (4,),
        "3.body.0.weight": (8, 4, 3, 3), "3.body.0.bias": (8,),
        "3.body.1.weight": (8,), "3.body.1.bias": (8,), "3.body.1.running_mean": (8,),
        "3.body.1.running_var": (8,),
        "3.body.3.weight": (8, 8, 3, 3), "3.body.3.bias": (8,),
        "3.shortcut.0.weight": (8, 4, 1, 1),
        "3.shortcut.1.weight": (8,), "3.shortcut.1.bias": (8,),
        "3.shortcut.1.running_mean": (8,), "3.shortcut.1.running_var": (8,),
        "6.weight": (16, 8), "6.bias": (16,), "8.weight": (3, 16), "8.bias": (3,)}
    weights = init_weights(SPECS, SHAPE, np.random.default_rng(0))
    assert list(weights) == list(shapes)
    assert {key: value.shape for key, value in weights.items()} == shapes


def test_decayed_keys_are_the_kernels_and_dense_matrices():
    assert decayed_keys(SPECS, SHAPE) == {"0.weight", "3.body.0.weight", "3.body.3.weight",
                                          "3.shortcut.0.weight", "6.weight", "8.weight"}


def test_biases_and_batchnorm_start_at_their_neutral_values():
    weights = init_weights(SPECS, SHAPE, np.random.default_rng(0))
    assert all(value.dtype == np.float32 for value in weights.values())
    for key, value in weights.items():
        if key.endswith(("bias", "running_mean")):
            np.testing.assert_array_equal(value, 0.0, err_msg=key)
        elif key.endswith("running_var") or (key.endswith("weight") and value.ndim == 1):
            np.testing.assert_array_equal(value, 1.0, err_msg=key)  # BatchNorm's scale


@pytest.mark.parametrize("activation, rule", [(S.ReLU(), "he"), (S.LeakyReLU(), "he"),
                                              (S.Tanh(), "glorot"), (S.Sigmoid(), "glorot"),
                                              (None, "glorot")])
def test_he_after_relus_glorot_otherwise(activation, rule):
    """On a 64 -> 128 convolution of 3x3 (73,728 values), the standard deviation is
    He's sqrt(2 / fan_in) or Glorot uniform's limit / sqrt(3) to within 2 %."""
    specs = (S.Conv2d(128, 3), *([activation] if activation else []))
    weight = init_weights(specs, (64, 6, 6), np.random.default_rng(0))["0.weight"]
    fan_in, fan_out = 64 * 9, 128 * 9
    if rule == "he":
        expected = np.sqrt(2 / fan_in)
        assert np.abs(weight).max() > 3 * expected  # normal: unbounded tails
    else:
        limit = np.sqrt(6 / (fan_in + fan_out))
        expected = limit / np.sqrt(3)
        assert np.abs(weight).max() <= limit  # uniform on [-limit, limit]
        assert np.abs(weight).max() > 0.99 * limit
    assert weight.std() == pytest.approx(expected, rel=0.02)
    assert abs(weight.mean()) < 0.02 * expected  # five standard errors


def test_dense_layers_use_their_fan_in_and_out():
    specs = (S.Flatten(), S.Linear(400), S.ReLU(), S.Linear(300))
    weights = init_weights(specs, (1, 20, 25), np.random.default_rng(1))
    assert weights["1.weight"].std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert weights["3.weight"].std() == pytest.approx(
        np.sqrt(6 / (400 + 300)) / np.sqrt(3), rel=0.02)


def test_the_same_seed_gives_the_same_weights():
    first, again, other = (init_weights(SPECS, SHAPE, np.random.default_rng(seed))
                           for seed in (3, 3, 4))
    for key, value in first.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    assert not np.array_equal(first["0.weight"], other["0.weight"])
