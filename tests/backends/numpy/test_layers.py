"""The NumPy backend's layers: backends/numpy/layers.py, vs loop oracles and finite differences."""

import numpy as np
import pytest
import reference
from backends.spec_cases import GRADIENT_CASES, check_gradients, make_net, numeric_grad

from sklearn_cnn import layers as S
from sklearn_cnn.backends.numpy import layers as L
from sklearn_cnn.backends.numpy.losses import softmax_cross_entropy


@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_gradients_match_finite_differences_in_training(case):
    specs, in_shape = GRADIENT_CASES[case]
    check_gradients(specs, in_shape, training=True)


@pytest.mark.parametrize("case", ["batchnorm maps", "batchnorm vectors", "dropout", "max pool",
                                  "relu", "residual projection"])
def test_gradients_match_finite_differences_in_evaluation(case):
    specs, in_shape = GRADIENT_CASES[case]
    check_gradients(specs, in_shape, training=False)


def test_whole_lenet_gradient_including_loss():
    specs = (S.Conv2d(3, 3, padding="same"), S.ReLU(), S.MaxPool2d(2), S.Conv2d(4, 3),
             S.Tanh(), S.Flatten(), S.Linear(5), S.Sigmoid(), S.Linear(3))
    net = make_net(specs, (1, 6, 6))
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 1, 6, 6)), np.array([0, 2, 1, 2])

    def loss():
        return softmax_cross_entropy(net.forward(x, True), y)[0]

    _, dlogits = softmax_cross_entropy(net.forward(x, True), y)
    net.backward(dlogits)
    for layer in net.layers():
        for name, param in layer.params.items():
            np.testing.assert_allclose(layer.grads[name].copy(), numeric_grad(loss, param),
                                       rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, "same"), (3, 2)])
def test_conv_matches_loop_reference(stride, padding):
    spec = S.Conv2d(4, 3, stride=stride, padding=padding)
    net = make_net([spec], (3, 9, 8))
    x = np.random.default_rng(1).normal(size=(2, 3, 9, 8))
    layer = net.layers()[0]
    expected = reference.conv2d(x, layer.params["weight"], layer.params["bias"],
                                spec.strides, spec.resolve_padding((3, 9, 8)))
    np.testing.assert_allclose(net.forward(x, False), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec,in_shape", [
    (S.Conv2d(4, 3, stride=2, padding=1), (3, 9, 8)),
    (S.Conv2d(5, (2, 3), padding=(0, 1, 2, 0), bias=False), (2, 7, 6)),
    (S.Conv2d(6, 5), (1, 12, 12)),
    (S.Conv2d(3, 3, stride=(1, 2), padding="same"), (4, 6, 9)),
])
def test_conv_predict_is_its_evaluation_forward_in_blocks_keeping_nothing(
        spec, in_shape, monkeypatch):
    """Prediction's convolution unrolls one block of output rows at a time (one row a
    block here: the blocks are made tiny), with the bias in the product; it gives
    the loop oracle's output and keeps no cache for a backward pass."""
    from sklearn_cnn.backends.numpy import functional

    monkeypatch.setattr(functional, "PREDICT_BLOCK_VALUES", 1)
    layer = make_net([spec], in_shape).layers()[0]
    x = np.random.default_rng(1).normal(size=(3, *in_shape))
    bias = layer.params.get("bias", np.zeros(spec.out_channels))
    expected = reference.conv2d(x, layer.params["weight"], bias, spec.strides,
                                spec.resolve_padding(in_shape))
    layer.clear_cache()
    np.testing.assert_allclose(layer.predict(x), expected, rtol=1e-10, atol=1e-12)
    assert layer.cache is None
    monkeypatch.setattr(functional, "PREDICT_BLOCK_VALUES", 2**16)  # the whole map at once
    np.testing.assert_allclose(layer.predict(x), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", [S.ReLU(), S.MaxPool2d(2), S.BatchNorm(), S.Flatten()])
def test_predict_of_any_layer_is_its_evaluation_forward_and_keeps_no_cache(spec):
    net = make_net([S.Conv2d(3, 3), spec], (2, 6, 6))
    layer = net.root.layers[1]
    x = np.random.default_rng(3).normal(size=(4, 3, 4, 4))
    expected = layer.forward(x, training=False).copy()
    layer.clear_cache()
    np.testing.assert_array_equal(layer.predict(x), expected)
    assert layer.cache is None


@pytest.mark.parametrize("spec,reduce", [(S.MaxPool2d(2), np.max), (S.MaxPool2d(3, 2), np.max),
                                         (S.AvgPool2d(2), np.mean),
                                         (S.AvgPool2d((2, 3), 1), np.mean)])
def test_pooling_matches_loop_reference(spec, reduce):
    x = np.random.default_rng(2).normal(size=(2, 3, 7, 8))
    net = make_net([spec], (3, 7, 8))
    expected = reference.pool2d(x, spec.kernel, spec.strides, reduce)
    np.testing.assert_allclose(net.forward(x, False), expected, rtol=1e-12)


def test_adaptive_avg_pool_windows_are_pytorchs():
    # 5 rows into 3: windows [0, 2), [1, 4), [3, 5) (floor start, ceil stop)
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    net = make_net([S.AdaptiveAvgPool2d((3, 1))], (1, 5, 1))
    np.testing.assert_allclose(net.forward(x, False).ravel(), [0.5, 2.0, 3.5])
    # a map smaller than the output is repeated; on an equal size it is the identity
    up = make_net([S.AdaptiveAvgPool2d(2)], (1, 1, 1)).forward(np.full((1, 1, 1, 1), 7.0), False)
    np.testing.assert_array_equal(up, np.full((1, 1, 2, 2), 7.0))
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
    np.testing.assert_allclose(make_net([S.AdaptiveAvgPool2d(4)], (3, 4, 4)).forward(x, False),
                               x, rtol=1e-12)


def test_padded_max_pool_never_picks_the_border():
    x = -np.ones((1, 1, 4, 4))  # all negative: a zero border would win, -inf never does
    out = make_net([S.MaxPool2d(3, 2, padding=1)], (1, 4, 4)).forward(x, False)
    assert out.shape == (1, 1, 2, 2) and np.all(out == -1.0)


def test_max_pool_ties_send_gradient_to_one_position():
    net = make_net([S.MaxPool2d(2)], (1, 2, 2))
    net.forward(np.zeros((1, 1, 2, 2)), True)  # all four tie, as after a ReLU
    dx = net.backward(np.ones((1, 1, 1, 1)))
    assert dx.sum() == 1.0 and dx[0, 0, 0, 0] == 1.0


def test_batchnorm_running_statistics_and_modes():
    net = make_net([S.BatchNorm(momentum=0.5)], (2, 3, 3))
    layer = net.layers()[0]
    layer.buffers["running_mean"][:] = 0.0
    layer.buffers["running_var"][:] = 1.0
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 2, 3, 3))
    net.forward(x, training=True)
    batch_mean = x.mean(axis=(0, 2, 3))
    batch_var = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.5 * batch_mean)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.5 + 0.5 * batch_var)
    # evaluation uses the running statistics and leaves them alone
    before = {k: v.copy() for k, v in layer.buffers.items()}
    out = net.forward(x, training=False)
    gamma, beta = layer.params["weight"], layer.params["bias"]
    mean, var = (before[k][None, :, None, None] for k in ("running_mean", "running_var"))
    expected = gamma[None, :, None, None] * (x - mean) / np.sqrt(var + 1e-5) \
        + beta[None, :, None, None]
    np.testing.assert_allclose(out, expected)
    for k in before:
        np.testing.assert_array_equal(layer.buffers[k], before[k])


def test_dropout_is_inverted_and_off_at_prediction():
    net = make_net([S.Dropout(0.25)], (1, 100, 100))
    x = np.ones((2, 1, 100, 100))
    out = net.forward(x, training=True)
    kept = out != 0
    assert 0.72 < kept.mean() < 0.78
    np.testing.assert_allclose(out[kept], 1 / 0.75)
    np.testing.assert_array_equal(net.forward(x, training=False), x)


STRIDE_ONE_CONVS = {
    "valid 3x3": (S.Conv2d(4, 3), (3, 7, 6)),
    "same 3x3": (S.Conv2d(4, 3, padding=1), (3, 5, 5)),
    "same even kernel": (S.Conv2d(2, 4, padding="same"), (2, 5, 6)),
    "rectangular, uneven padding": (S.Conv2d(3, (2, 3), padding=(0, 1, 2, 0)), (2, 5, 7)),
    "1x1 no bias": (S.Conv2d(3, 1, bias=False), (2, 4, 4)),
    "5x5 on one channel": (S.Conv2d(2, 5, padding=2), (1, 6, 6)),
}


@pytest.mark.parametrize("case", STRIDE_ONE_CONVS)
@pytest.mark.parametrize("layer_class", [L.ShiftedConv2d, L.Conv2d])
def test_both_convolution_kernels_match_the_loop_reference_and_differences(
        case, layer_class, monkeypatch):
    """Stride-1 convolutions run as shifted slices of a flat buffer where the builder
    finds it pays off and as one im2col otherwise: each class, on every case, gives
    the loop oracle's output and the finite-difference gradients; blocks of 350 values
    make several blocks (and a short last one) even on these small maps."""
    from sklearn_cnn.backends.numpy import functional

    monkeypatch.setattr(functional, "BLOCK_VALUES", 7 * 2 * 25)
    spec, in_shape = STRIDE_ONE_CONVS[case]
    net = make_net([spec], in_shape)
    params = {name: p.copy() for name, p in net.layers()[0].params.items()}
    layer = layer_class(spec, in_shape, params)
    x = np.random.default_rng(1).normal(size=(3, *in_shape))
    bias = params.get("bias", np.zeros(spec.out_channels))
    expected = reference.conv2d(x, params["weight"], bias, spec.strides,
                                spec.resolve_padding(in_shape))
    for training in (False, True):
        np.testing.assert_allclose(layer.forward(x, training), expected, rtol=1e-10,
                                   atol=1e-12)
    upstream = np.random.default_rng(2).normal(size=expected.shape)

    def loss():
        return float(np.sum(layer.forward(x, True) * upstream))

    loss()
    dx = layer.backward(upstream)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    for name, param in layer.params.items():
        np.testing.assert_allclose(layer.grads[name].copy(), numeric_grad(loss, param),
                                   rtol=1e-5, atol=1e-7, err_msg=name)


def test_prediction_threads_each_fill_their_own_scratch():
    """Convolutions refill the previous batch's columns and buffers instead of fresh
    ones, but only those their own thread made: networks predicted from several
    threads at once give each thread exactly its serial answer."""
    import threading

    specs = [S.Conv2d(4, 5, padding=2), S.ReLU(), S.Conv2d(6, 5), S.ReLU(),
             S.GlobalAvgPool2d(), S.Linear(3)]
    net = make_net(specs, (5, 10, 10))
    assert {type(layer) for layer in net.layers()} >= {L.Conv2d, L.ShiftedConv2d}
    inputs = [np.random.default_rng(seed).normal(size=(16, 5, 10, 10)) for seed in range(4)]
    serial = [net.forward(x, training=False).copy() for x in inputs]
    results = [[] for _ in inputs]

    def predict(i):
        for _ in range(30):
            results[i].append(net.forward(inputs[i], training=False).copy())

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, outputs in zip(serial, results, strict=True):
        for output in outputs:
            np.testing.assert_array_equal(output, expected)


def test_shifted_convolutions_refuse_strides():
    with pytest.raises(ValueError, match="stride-1"):
        L.ShiftedConv2d(S.Conv2d(4, 3, stride=2), (2, 8, 8), {"weight": np.zeros((4, 2, 3, 3))})


def _memory_order(a: np.ndarray) -> tuple[int, ...]:
    """The axes of ``a`` from the largest stride to the smallest."""
    return tuple(np.argsort(a.strides, kind="stable")[::-1])


@pytest.mark.parametrize("specs,in_shape", [
    # GlobalAvgPool2d's gradient after a convolution's batch-innermost maps
    ([S.Conv2d(4, 3, padding=1), S.ReLU(), S.GlobalAvgPool2d(), S.Linear(3)], (2, 6, 6)),
    # Dropout between a flattened map and a Linear layer
    ([S.Conv2d(4, 3), S.MaxPool2d(2), S.Flatten(), S.Dropout(0.5), S.Linear(3)], (1, 8, 8)),
])
def test_each_gradient_comes_back_in_its_input_layout(specs, in_shape):
    # element-wise work on an input and a gradient laid out differently runs several
    # times slower, so every layer's dout arrives in its output's layout, and dx
    # keeps x's (but the first layer's: the images' own layout is NCHW)
    net = make_net(specs, in_shape)
    seen, first = {}, net.all_layers()[0]

    def watch(layer):
        forward, backward = layer.forward, layer.backward

        def watched_forward(x, training):
            y = forward(x, training)
            seen[id(layer)] = (_memory_order(x), _memory_order(y))
            return y

        def watched_backward(dout):
            dx = backward(dout)
            x_order, y_order = seen[id(layer)]
            assert _memory_order(dout) == y_order, type(layer).__name__
            if dx is not None and layer is not first:
                assert _memory_order(dx) == x_order, type(layer).__name__
            return dx
        layer.forward, layer.backward = watched_forward, watched_backward

    for layer in net.all_layers():
        watch(layer)
    x = np.random.default_rng(0).standard_normal((5, *in_shape)).astype(np.float32)
    out = net.forward(x, training=True)
    net.backward(np.ones_like(out))
    assert len(seen) == len(net.all_layers())
