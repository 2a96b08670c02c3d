"""The NumPy backend's optimizers: backends/numpy/optim.py, steps worked on paper."""

import numpy as np
import pytest

from sklearn_cnn.backends.numpy.optim import AdamOptimizer, SGDOptimizer


def test_sgd_plain_step():
    w = np.array([1.0, -2.0])
    SGDOptimizer([w], learning_rate_init=0.1, momentum=0.0, nesterov=False) \
        .update_params([np.array([0.5, -1.0])])
    np.testing.assert_allclose(w, [0.95, -1.9])  # w - 0.1 * g


def test_sgd_momentum_two_steps():
    w = np.array([1.0])
    opt = SGDOptimizer([w], learning_rate_init=0.1, momentum=0.9, nesterov=False)
    opt.update_params([np.array([1.0])])  # v = -0.1          -> w = 0.9
    opt.update_params([np.array([1.0])])  # v = -0.09 - 0.1   -> w = 0.71
    np.testing.assert_allclose(w, [0.71])


def test_sgd_nesterov_step():
    w = np.array([1.0])
    opt = SGDOptimizer([w], learning_rate_init=0.1, momentum=0.9, nesterov=True)
    opt.update_params([np.array([1.0])])
    # v = -0.1; update = 0.9 * v - 0.1 * g = -0.19
    np.testing.assert_allclose(w, [0.81])


def test_adam_first_steps():
    w = np.array([1.0, 1.0])
    opt = AdamOptimizer([w], learning_rate_init=0.01, beta_1=0.9, beta_2=0.999,
                        epsilon=1e-8)
    opt.update_params([np.array([2.0, -0.5])])
    # m = 0.1 g, v = 0.001 g^2; step = 0.01 * sqrt(0.001) / 0.1
    # update = -step * m / (sqrt(v) + eps) = -0.01 * sign(g) (up to eps)
    np.testing.assert_allclose(w, [0.99, 1.01], rtol=1e-7)
    opt.update_params([np.array([2.0, -0.5])])  # constant gradient: another lr step
    np.testing.assert_allclose(w, [0.98, 1.02], rtol=1e-6)


def test_updates_are_in_place_on_the_given_arrays():
    w = np.ones((2, 2), dtype=np.float32)
    ref = w
    AdamOptimizer([w]).update_params([np.ones((2, 2), dtype=np.float32)])
    assert ref is w and w.dtype == np.float32 and np.all(w < 1)


@pytest.mark.parametrize("optimizer", [SGDOptimizer, AdamOptimizer])
def test_zero_gradient_leaves_weights(optimizer):
    w = np.array([0.3, -0.7])
    optimizer([w]).update_params([np.zeros(2)])
    np.testing.assert_array_equal(w, [0.3, -0.7])


@pytest.mark.parametrize("optimizer", [SGDOptimizer, AdamOptimizer])
def test_state_dict_is_a_copy_and_loading_it_replays_the_same_steps(optimizer):
    grads = [np.array([0.5, -1.0]), np.array([2.0, 0.25])]
    w = np.array([1.0, -2.0])
    opt = optimizer([w])
    opt.update_params(grads[:1])
    state, saved = opt.state_dict(), w.copy()
    frozen = {k: [a.copy() for a in v] if isinstance(v, list) else v for k, v in state.items()}
    opt.update_params(grads[1:])
    after = w.copy()
    for key, value in frozen.items():  # a copy: the step taken since left it alone
        np.testing.assert_array_equal(state[key], value)
    w[...] = saved
    opt.load_state_dict(state)
    opt.update_params(grads[1:])
    np.testing.assert_array_equal(w, after)
