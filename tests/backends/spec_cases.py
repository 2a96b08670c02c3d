"""Shared helpers: a small network of each spec type, float64 NumPy nets, finite differences."""

import numpy as np

from sklearn_cnn import layers as S
from sklearn_cnn._weights import init_weights
from sklearn_cnn.backends.numpy import Network

#: name -> (specs, input shape): every spec type, and the variants (strides, padding,
#: uneven windows, shortcuts) each backend computes apart
GRADIENT_CASES = {
    "conv": ([S.Conv2d(3, 3)], (2, 6, 6)),
    "conv stride 2 padding 1": ([S.Conv2d(2, 3, stride=2, padding=1)], (2, 7, 7)),
    "conv same even kernel": ([S.Conv2d(2, 4, padding="same")], (1, 5, 6)),
    "conv 1x1 no bias": ([S.Conv2d(2, 1, bias=False)], (3, 4, 4)),
    "conv rectangular": ([S.Conv2d(2, (2, 3), stride=(1, 2))], (2, 5, 7)),
    "max pool": ([S.MaxPool2d(2)], (2, 6, 6)),
    "max pool overlapping": ([S.MaxPool2d(3, stride=2)], (2, 7, 7)),
    "max pool floor": ([S.MaxPool2d(2)], (1, 5, 5)),
    "avg pool": ([S.AvgPool2d(2)], (2, 4, 6)),
    "avg pool overlapping": ([S.AvgPool2d(3, stride=1)], (2, 5, 5)),
    "max pool padded": ([S.MaxPool2d(3, stride=2, padding=1)], (2, 7, 6)),
    "avg pool padded": ([S.AvgPool2d(3, stride=2, padding=1)], (2, 6, 6)),
    "adaptive avg pool down": ([S.AdaptiveAvgPool2d((3, 2))], (2, 7, 5)),
    "adaptive avg pool up": ([S.AdaptiveAvgPool2d(3)], (2, 1, 2)),
    "global avg pool": ([S.GlobalAvgPool2d()], (3, 4, 5)),
    "flatten + linear": ([S.Flatten(), S.Linear(4)], (2, 3, 3)),
    "relu": ([S.ReLU()], (2, 3, 3)),
    "leaky relu": ([S.LeakyReLU(0.1)], (2, 3, 3)),
    "tanh": ([S.Tanh()], (2, 3, 3)),
    "sigmoid": ([S.Sigmoid()], (2, 3, 3)),
    "batchnorm maps": ([S.BatchNorm()], (3, 4, 4)),
    "batchnorm vectors": ([S.Flatten(), S.BatchNorm()], (5, 1, 1)),
    "dropout": ([S.Dropout(0.4)], (2, 4, 4)),
    "residual identity": ([S.Residual((S.Conv2d(2, 3, padding=1), S.BatchNorm(), S.ReLU(),
                                       S.Conv2d(2, 3, padding=1)))], (2, 5, 5)),
    "residual projection": ([S.Residual(
        (S.Conv2d(4, 3, stride=2, padding=1), S.BatchNorm(), S.ReLU()),
        (S.Conv2d(4, 1, stride=2), S.BatchNorm()))], (2, 6, 6)),
}


def make_net(specs, in_shape, seed=0):
    """A float64 network with input gradients and random (not just default) weights."""
    rng = np.random.default_rng(seed)
    weights = init_weights(tuple(specs), in_shape, rng)
    for key, value in weights.items():  # perturb so BatchNorm scale/shift matter
        if not key.endswith("running_var"):
            weights[key] = value + rng.normal(0, 0.3, value.shape)
        else:
            weights[key] = rng.uniform(0.5, 2.0, value.shape)
    return Network(tuple(specs), in_shape, weights, rng=np.random.default_rng(seed),
                   dtype=np.float64, input_grad=True)


def numeric_grad(f, array, eps=1e-6):
    """Central finite differences of the scalar ``f()`` with respect to ``array``,
    which is changed in place one entry at a time (and put back)."""
    grad = np.zeros_like(array)
    it = np.nditer(array, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = array[i]
        array[i] = old + eps
        plus = f()
        array[i] = old - eps
        minus = f()
        array[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(specs, in_shape, training=True, n=3, seed=0):
    """The input and parameter gradients of a float64 network of ``specs`` are the
    finite-difference ones (dropout masks held fixed)."""
    net = make_net(specs, in_shape, seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(n, *in_shape))
    out = net.forward(x, training)
    upstream = rng.normal(size=out.shape)

    def loss():
        for layer in net.all_layers():  # same dropout mask at every evaluation
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng(seed)
        return float(np.sum(net.forward(x, training) * upstream))

    loss()
    dx = net.backward(upstream)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    for layer in net.layers():
        for name, param in layer.params.items():
            analytic = layer.grads[name].copy()
            np.testing.assert_allclose(analytic, numeric_grad(loss, param), rtol=1e-5,
                                       atol=1e-7, err_msg=f"{layer.key}.{name}")
