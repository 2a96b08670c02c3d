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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_steps_follow_the_written_formulas_and_leave_the_gradients_alone(dtype):
    """Several steps on random gradients against the update rules written out as in
    the docstrings (the optimizers compute them in place), in the weights' dtype."""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 4)).astype(dtype) for _ in range(4)]
    kept = [g.copy() for g in grads]
    sgd_w, adam_w = np.ones((3, 4), dtype), np.ones((3, 4), dtype)
    sgd = SGDOptimizer([sgd_w], learning_rate_init=0.1, momentum=0.9, nesterov=True)
    adam = AdamOptimizer([adam_w], learning_rate_init=0.01)
    w1, w2 = np.ones((3, 4)), np.ones((3, 4))
    b, m, v = np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 4))
    for t, g in enumerate(grads, start=1):
        sgd.update_params([g])
        adam.update_params([g])
        b = 0.9 * b + g
        w1 -= 0.1 * (g + 0.9 * b)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w2 -= 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sgd_w, w1, rtol=tol)
    np.testing.assert_allclose(adam_w, w2, rtol=tol)
    assert sgd_w.dtype == adam_w.dtype == dtype
    for g, k in zip(grads, kept, strict=True):
        np.testing.assert_array_equal(g, k)


@pytest.mark.parametrize("make", [
    lambda params: SGDOptimizer(params, learning_rate_init=0.1, momentum=0.9),
    lambda params: AdamOptimizer(params, learning_rate_init=0.01),
])
@pytest.mark.parametrize("count", [2, 3])
def test_steps_in_parts_are_the_whole_steps(make, count):
    """Two steps cut into parts (run one after another here; the backend runs them on
    threads) change the parameters and the state exactly as whole steps do; small
    arrays go whole to the first part, the step count comes back."""
    from sklearn_cnn.backends.numpy.optim import PART_VALUES

    rng = np.random.default_rng(0)
    shapes = [(PART_VALUES + 7,), (3, 4), (64, PART_VALUES // 16)]
    whole = [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]
    cut = [w.copy() for w in whole]
    whole_opt, cut_opt = make(whole), make(cut)
    for _ in range(2):
        grads = [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]
        whole_opt.update_params(grads)
        parts = cut_opt.parts(grads, count)
        assert len(parts) == count
        assert [len(part.params) for part, _ in parts] == [3] + [2] * (count - 1)
        for part, part_grads in parts:
            part.update_params(part_grads)
        cut_opt.join(parts)
    for mine, theirs in zip(cut, whole, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert cut_opt.state_dict().keys() == whole_opt.state_dict().keys()
    # many small arrays (fewer than PART_VALUES values each on average): one part
    small = [np.zeros(PART_VALUES // 4, dtype=np.float32) for _ in range(5)]
    assert len(make(small).parts(small, count)) == 1
    for name, value in whole_opt.state_dict().items():
        if isinstance(value, list):
            for a, b in zip(cut_opt.state_dict()[name], value, strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            assert cut_opt.state_dict()[name] == value
