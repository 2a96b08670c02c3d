"""The NumPy backend's losses and their gradients (backends/numpy/losses.py)."""

import numpy as np
import pytest

from sklearn_cnn.backends._base import softmax
from sklearn_cnn.backends.numpy.losses import regression_loss, softmax_cross_entropy


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss, grad = softmax_cross_entropy(logits, np.array([0, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, (0.0 + np.log(3)) / 2)
    p = softmax(logits)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_softmax_cross_entropy_gradient_and_weights():
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
    _, grad = softmax_cross_entropy(logits, y)
    expected = softmax(logits)
    expected[np.arange(5), y] -= 1
    np.testing.assert_allclose(grad, expected / 5)
    # weights 1 everywhere is the plain mean; weights 2 on one sample count it twice
    w = np.array([2.0, 1, 1, 1, 1])
    wl, wg = softmax_cross_entropy(logits, y, w)
    doubled = np.concatenate([logits[:1], logits])
    dl, dg = softmax_cross_entropy(doubled, np.concatenate([y[:1], y]))
    np.testing.assert_allclose(wl, dl)
    np.testing.assert_allclose(wg[0], dg[0] + dg[1])


@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_loss_and_gradient(weighted):
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
    weights = rng.random(5) if weighted else None
    loss, grad = softmax_cross_entropy(logits, y, weights, label_smoothing=0.2)
    target = np.full((5, 4), 0.2 / 4)
    target[np.arange(5), y] += 0.8
    losses = -(target * np.log(softmax(logits.copy()))).sum(axis=1)
    expected = losses.mean() if weights is None else losses @ weights / weights.sum()
    assert loss == pytest.approx(expected, rel=1e-12)
    numeric = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):  # finite differences, the oracle
        step = np.zeros_like(logits)
        step[index] = 1e-6
        numeric[index] = (softmax_cross_entropy(logits + step, y, weights, 0.2)[0]
                          - softmax_cross_entropy(logits - step, y, weights, 0.2)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-8)


@pytest.mark.parametrize("kind", ["squared_error", "huber", "absolute_error"])
def test_regression_loss_gradient_and_weights(kind):
    rng = np.random.default_rng(0)
    outputs, targets = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3))
    weights = rng.uniform(0.5, 2.0, 6)
    _, grad = regression_loss(outputs, targets, weights, kind)
    numeric = np.zeros_like(outputs)
    for index in np.ndindex(outputs.shape):
        step = np.zeros_like(outputs)
        step[index] = 1e-6
        numeric[index] = (regression_loss(outputs + step, targets, weights, kind)[0]
                          - regression_loss(outputs - step, targets, weights, kind)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-6)
    doubled = regression_loss(np.vstack([outputs[:1], outputs]),
                              np.vstack([targets[:1], targets]), None, kind)[0]
    single = regression_loss(outputs, targets, np.r_[2.0, np.ones(5)], kind)[0]
    np.testing.assert_allclose(single, doubled)  # a weight of 2 counts a sample twice


def test_regression_losses_by_hand():
    r = np.array([[0.5, -3.0]])
    zero = np.zeros_like(r)
    assert regression_loss(r, zero, kind="squared_error")[0] == pytest.approx((0.125 + 4.5) / 2)
    assert regression_loss(r, zero, kind="huber")[0] == pytest.approx((0.125 + 2.5) / 2)
    assert regression_loss(r, zero, kind="absolute_error")[0] == pytest.approx(1.75)
