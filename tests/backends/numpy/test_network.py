"""The NumPy backend's network (backends/numpy/network.py): specs in, layers, weights out."""

import pickle
import threading

import numpy as np
import pytest
from backends.spec_cases import GRADIENT_CASES, make_net

from sklearn_cnn import layers as S
from sklearn_cnn._weights import init_weights
from sklearn_cnn.backends.numpy import BUILDERS, Network
from sklearn_cnn.backends.numpy import layers as L
from sklearn_cnn.backends.numpy.network import prediction_steps

#: a residual network small enough to run in a blink: key "2" is the block, whose
#: body holds "2.body.0" (conv), "2.body.1" (BatchNorm) and "2.body.2" (ReLU)
RESIDUAL = (S.Conv2d(3, 3, padding=1), S.ReLU(),
            S.Residual((S.Conv2d(3, 3, padding=1, bias=False), S.BatchNorm(), S.ReLU()),
                       (S.Conv2d(3, 1, bias=False),)),
            S.GlobalAvgPool2d(), S.Linear(2))


def test_builder_table_covers_every_spec_type():
    assert set(BUILDERS) == set(S.SPEC_TYPES)


def test_every_spec_type_builds_and_runs_at_its_spec_shape():
    for specs, in_shape in GRADIENT_CASES.values():
        net = make_net(specs, in_shape)
        out = net.forward(np.zeros((2, *in_shape)), training=False)
        expected = in_shape
        for spec in specs:
            expected = spec.output_shape(expected)
        assert out.shape == (2, *expected)
        keys = {f"{layer.key}.{name}" for layer in net.layers()
                for name in {**layer.params, **layer.buffers}}
        assert keys == set(net.get_weights())


def test_a_network_refuses_weights_of_another_architecture():
    specs = (S.Conv2d(2, 3), S.Flatten(), S.Linear(2))
    weights = init_weights(specs, (1, 5, 5), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"missing \['2.bias'\]"):
        Network(specs, (1, 5, 5), {k: v for k, v in weights.items() if k != "2.bias"})
    with pytest.raises(ValueError, match=r"unexpected \['9.weight'\]"):
        Network(specs, (1, 5, 5), {**weights, "9.weight": np.zeros(3)})
    with pytest.raises(ValueError, match=r"2\.weight: expected \(2, 32\), got \(2, 18\)"):
        Network(specs, (1, 6, 6), weights)  # 6x6 images: 2x4x4 features, not 2x3x3
    # the weights given are copied, in the network's dtype
    net = Network(specs, (1, 5, 5), weights, dtype=np.float64)
    weights["0.weight"][:] = 0.0
    assert net.get_weights()["0.weight"].dtype == np.float64
    assert np.any(net.get_weights()["0.weight"] != 0)


def test_forward_to_stops_after_the_layer_named_residual_blocks_entered():
    net = make_net(RESIDUAL, (2, 5, 5))
    x = np.random.default_rng(0).normal(size=(3, 2, 5, 5))
    stem, relu, block = net.root.layers[:3]
    after_relu = relu.forward(stem.forward(x, False), False)
    np.testing.assert_array_equal(net.forward_to(x, "1"), after_relu)
    np.testing.assert_array_equal(net.forward_to(x, "2"), block.forward(after_relu, False))
    conv, norm = block.body.layers[:2]
    np.testing.assert_array_equal(net.forward_to(x, "2.body.1"),
                                  norm.forward(conv.forward(after_relu, False), False))
    np.testing.assert_array_equal(net.forward_to(x, "2.shortcut.0"),
                                  block.shortcut.layers[0].forward(after_relu, False))
    np.testing.assert_array_equal(net.forward_to(x, "4"), net.forward(x, training=False))
    assert net.forward_to(x, "2.body.1").shape == (3, 3, 5, 5)


@pytest.mark.parametrize("activation", [S.ReLU(), S.Tanh(), S.LeakyReLU(0.1)])
def test_prediction_folds_batchnorm_and_pools_before_monotone_activations(activation):
    """The prediction steps compute forward(training=False) up to rounding, with the
    BatchNorm after each convolution folded into it, each activation moved after
    its 2x2 max-pool and the convolution then made one step with the pool, inside
    residual blocks too."""
    specs = (S.Conv2d(4, 3, padding=1), S.BatchNorm(), activation, S.MaxPool2d(2),
             S.Residual((S.Conv2d(4, 3, padding=1), S.BatchNorm(), S.ReLU(),
                         S.Conv2d(4, 3, padding=1, bias=False), S.BatchNorm())),
             S.ReLU(), S.Flatten(), S.Linear(3))
    net = make_net(specs, (2, 8, 8))
    x = np.random.default_rng(1).normal(size=(5, 2, 8, 8))
    np.testing.assert_allclose(net.prediction()(x), net.forward(x, training=False),
                               rtol=1e-12, atol=1e-12)
    steps = prediction_steps(net.root.layers)
    assert len(steps) == len(net.root.layers) - 2  # conv + BatchNorm + pool: one step
    before = net.get_weights()
    net.prediction()(x)
    for key, value in net.get_weights().items():  # the network's own weights unchanged
        np.testing.assert_array_equal(value, before[key])


def test_prediction_passes_are_sized_by_the_arrays_a_pass_really_holds():
    """A convolution made one step with its max-pool never holds its full-size
    output: the prediction width is the pooled map; a convolution that pools after
    (16 channels in, 3x3) holds its own."""
    specs = (S.Conv2d(4, 3, padding=1), S.ReLU(), S.MaxPool2d(2), S.Flatten(), S.Linear(3))
    net = make_net(specs, (1, 8, 8))
    assert net.widest_activation == 4 * 8 * 8
    assert net.prediction_width == 4 * 4 * 4
    wide = make_net((S.Conv2d(4, 3, padding=1), S.MaxPool2d(2)), (16, 8, 8))
    assert wide.prediction_width == wide.widest_activation == 16 * 8 * 8  # the input
    deep = make_net((S.Conv2d(32, 3, padding=1), S.MaxPool2d(2)), (16, 8, 8))
    assert deep.prediction_width == 32 * 8 * 8


def test_layers_are_keyed_in_order_and_only_owners_of_arrays_are_listed():
    net = make_net(RESIDUAL, (2, 5, 5))
    assert [layer.key for layer in net.all_layers()] == [
        "0", "1", "2.body.0", "2.body.1", "2.body.2", "2.shortcut.0", "3", "4"]
    assert [layer.key for layer in net.layers()] == ["0", "2.body.0", "2.body.1",
                                                     "2.shortcut.0", "4"]


def test_first_layer_skips_input_gradient():
    rng = np.random.default_rng(0)
    specs = (S.Conv2d(2, 3), S.Flatten(), S.Linear(2))
    weights = init_weights(specs, (1, 5, 5), rng)
    net = Network(specs, (1, 5, 5), weights, rng=rng)
    net.forward(rng.normal(size=(2, 1, 5, 5)).astype(np.float32), True)
    assert net.backward(np.ones((2, 2), dtype=np.float32)) is None
    assert np.any(net.layers()[0].grads["weight"] != 0)


def test_weights_round_trip_and_are_copied():
    specs = (S.Conv2d(2, 3), S.BatchNorm(), S.Flatten(), S.Linear(2))
    rng = np.random.default_rng(0)
    weights = init_weights(specs, (1, 4, 4), rng)
    net = Network(specs, (1, 4, 4), weights, rng=rng)
    got = net.get_weights()
    assert set(got) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                        "1.running_var", "3.weight", "3.bias"}
    got["0.weight"][:] = 7.0  # a copy: the network is untouched
    assert not np.any(net.get_weights()["0.weight"] == 7.0)
    net.set_weights(got)
    np.testing.assert_array_equal(net.get_weights()["0.weight"], 7.0)
    with pytest.raises(ValueError, match="missing"):
        net.set_weights({k: v for k, v in got.items() if k != "3.bias"})
    got["3.weight"] = np.zeros((5, 5))
    with pytest.raises(ValueError, match="wrong shapes"):
        net.set_weights(got)


def test_set_weights_round_trips_a_network_and_writes_in_place():
    """Weights taken from one network and set into another give the same outputs,
    BatchNorm statistics of the residual block included, and are written into the
    arrays the layers (and an optimizer) already hold."""
    source, target = make_net(RESIDUAL, (2, 5, 5), seed=0), make_net(RESIDUAL, (2, 5, 5), seed=1)
    x = np.random.default_rng(2).normal(size=(4, 2, 5, 5))
    assert not np.allclose(source.forward(x, False), target.forward(x, False))
    held = target.layers()[0].params["weight"]
    target.set_weights(source.get_weights())
    np.testing.assert_array_equal(target.forward(x, False), source.forward(x, False))
    assert target.layers()[0].params["weight"] is held


def test_seed_dropout_makes_masks_depend_on_the_seed_and_the_layer():
    net = make_net([S.Dropout(0.5), S.Dropout(0.5)], (1, 10, 10))
    first, second = net.root.layers
    x = np.ones((2, 1, 10, 10))

    def masks(seed):
        net.seed_dropout(seed)
        return first.forward(x, True) != 0, second.forward(x, True) != 0

    a = masks(3)
    np.testing.assert_array_equal(masks(3)[0], a[0])   # the same seed: the same masks
    np.testing.assert_array_equal(masks(3)[1], a[1])
    assert not np.array_equal(masks(4)[0], a[0])       # another seed: others
    assert not np.array_equal(a[0], a[1])              # one stream a layer


def test_the_builder_picks_shifted_slices_where_they_pay_off():
    def kernel(spec, in_shape):
        return type(make_net([spec], in_shape).layers()[0])

    assert kernel(S.Conv2d(16, 3, padding=1), (16, 28, 28)) is L.ShiftedConv2d  # ResNet
    assert kernel(S.Conv2d(16, 3, padding=1), (64, 7, 7)) is L.ShiftedConv2d
    assert kernel(S.Conv2d(6, 5), (1, 28, 28)) is L.Conv2d        # one input channel
    assert kernel(S.Conv2d(16, 3, padding=1), (8, 28, 28)) is L.ShiftedConv2d  # simple's
    assert kernel(S.Conv2d(64, 3, padding=1), (3, 32, 32)) is L.ShiftedConv2d  # RGB
    assert kernel(S.Conv2d(4, 1), (3, 8, 8)) is L.Conv2d          # 3 patch rows
    assert kernel(S.Conv2d(16, 5), (6, 12, 12)) is L.Conv2d       # 8x8 out of 12x12
    assert kernel(S.Conv2d(16, 3, stride=2, padding=1), (16, 28, 28)) is L.Conv2d


def test_2x2_max_pools_get_the_halving_layer_and_compute_the_same():
    """2x2 windows with stride 2 tile the map: the builder gives them a layer of their
    own, which computes what the general max pool does, forward and backward."""
    rng = np.random.default_rng(0)
    for in_shape in [(3, 6, 6), (2, 7, 5)]:
        net = make_net([S.MaxPool2d(2)], in_shape)
        halving = net.root.layers[0]
        assert type(halving) is L.HalvingMaxPool2d
        general = L.MaxPool2d(S.MaxPool2d(2), in_shape)
        x = rng.normal(size=(2, *in_shape))
        out = halving.forward(x, True)
        np.testing.assert_array_equal(out, general.forward(x, True))
        upstream = rng.normal(size=out.shape)
        np.testing.assert_array_equal(halving.backward(upstream), general.backward(upstream))
    for other in (S.MaxPool2d(3, 2), S.MaxPool2d(2, padding=1), S.MaxPool2d(2, stride=1)):
        assert type(make_net([other], (3, 6, 6)).root.layers[0]) is L.MaxPool2d


def test_each_thread_keeps_its_own_cache_and_clearing_drops_them_all():
    """A layer's cache is per thread (prediction passes share layers across threads);
    the network's clear_cache drops every thread's; pickles carry none, nor does a
    layer pickled with the one cache of earlier versions load with it."""
    net = make_net([S.Conv2d(2, 3), S.ReLU(), S.Flatten(), S.Linear(3)], (1, 6, 6))
    conv = net.root.layers[0]
    x = np.random.default_rng(0).normal(size=(4, 1, 6, 6))
    net.forward(x, training=True)
    mine = conv.cache
    thread = threading.Thread(target=lambda: net.forward(x[:2], training=False))
    thread.start()
    thread.join()
    assert conv.cache is mine and len(conv._caches) == 2  # the other thread's is apart
    net.clear_cache()
    assert conv.cache is None and conv.scratch() is None and not conv._caches
    net.forward(x, training=True)
    restored = pickle.loads(pickle.dumps(net))
    assert all(layer.cache is None for layer in restored.all_layers())
    np.testing.assert_array_equal(restored.forward(x, False), net.forward(x, False))
    old = L.Conv2d.__new__(L.Conv2d)
    old.__setstate__({**conv.__getstate__(), "cache": conv.cache})
    assert old.cache is None and old.params["weight"] is conv.params["weight"]


def test_clear_cache_reaches_the_layers_inside_residual_blocks():
    net = make_net(RESIDUAL, (2, 5, 5))
    net.forward(np.ones((2, 2, 5, 5)), training=True)
    assert all(layer.cache is not None for layer in net.all_layers())
    net.clear_cache()
    assert all(not layer._caches for layer in net.all_layers())


def test_training_runs_relu_after_its_max_pool_with_the_same_outputs_and_gradients():
    """A ReLU followed by a 2x2 max-pool is run after the pool while training (a
    quarter of the values); outputs, weight gradients and input gradients are those
    of the layers run as listed, exactly. A leaky ReLU is left in place."""
    specs = (S.Conv2d(3, 3, padding=1), S.ReLU(), S.MaxPool2d(2),
             S.Conv2d(4, 3, padding=1), S.LeakyReLU(0.1), S.MaxPool2d(2),
             S.Flatten(), S.Linear(3))
    net, listed = make_net(specs, (2, 8, 8)), make_net(specs, (2, 8, 8))
    layers = net.root.layers
    assert net.root.order == [layers[0], layers[2], layers[1], *layers[3:]]
    listed.root.order = list(listed.root.layers)
    rng = np.random.default_rng(3)
    # integers: many exact ties, inside windows and at zero
    x = rng.integers(-2, 3, size=(6, 2, 8, 8)).astype(np.float64)
    dout = rng.normal(size=(6, 3))
    for network in (net, listed):
        network.forward(x, training=True)
    np.testing.assert_array_equal(net.forward(x, True), listed.forward(x, True))
    np.testing.assert_array_equal(net.backward(dout), listed.backward(dout))
    for mine, theirs in zip(net.layers(), listed.layers(), strict=True):
        for name in mine.grads:
            np.testing.assert_array_equal(mine.grads[name], theirs.grads[name])
    # a network pickled before the order was kept runs its layers as listed
    del net.root.order
    loaded = pickle.loads(pickle.dumps(net))
    assert loaded.root.order == loaded.root.layers
    np.testing.assert_array_equal(loaded.forward(x, False), listed.forward(x, False))
