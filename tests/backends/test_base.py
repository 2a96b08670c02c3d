"""What every backend shares: backends/_base.py and backends/__init__.py."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from sklearn_cnn import layers as S
from sklearn_cnn._weights import init_weights
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.backends import (
    BACKENDS,
    REGRESSION_LOSSES,
    TrainingConfig,
    adaptive_pool_matrix,
    get_backend,
    needs_specs,
    softmax,
)
from sklearn_cnn.backends._base import (
    REGRESSION_DERIVATIVES,
    fixed_size_batch,
    fixed_size_batches,
    mean_loss,
    predict_batch_size,
    prediction_passes,
    same_optimizer,
    widest_activation,
)
from sklearn_cnn.backends.numpy import NumpyBackend


def test_predict_batch_size_is_a_power_of_two_of_about_the_values_asked_for():
    # a million values: 512 28x28 images (1,337 would fit), 256 of 3x32x32 (341
    # would), and never fewer than 8, even of 3x224x224 (6 would)
    assert predict_batch_size((28, 28)) == 512
    assert predict_batch_size((3, 32, 32)) == 256
    assert predict_batch_size((3, 224, 224)) == 8
    assert predict_batch_size((1, 1, 1)) == 512  # at most 512, however small
    for shape in [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 100, 90), (1, 1, 5000)]:
        for values in (2**16, 2**20):
            size = predict_batch_size(shape, values)
            assert 8 <= size <= 512 and size & (size - 1) == 0
            per_image = int(np.prod(shape))
            if 8 < size < 512:  # the largest power of two that fits
                assert size * per_image <= values < 2 * size * per_image



def test_pass_size_from_the_widest_activation():
    """LeNet's widest activation on 28x28 is its first convolution's 6 maps of 24x24;
    the simple net's, its 16 maps of 28x28 ('same' padding); passes of 2**21 of
    those values hold 512 and 128 images."""
    lenet, _ = build_architecture("lenet", (1, 28, 28), 10)
    simple, _ = build_architecture("simple", (1, 28, 28), 10)
    assert widest_activation(lenet, (1, 28, 28)) == 6 * 24 * 24
    assert widest_activation(simple, (1, 28, 28)) == 16 * 28 * 28
    assert widest_activation((S.Flatten(), S.Linear(3)), (1, 4, 4)) == 16  # the input
    assert predict_batch_size((1, 28, 28), 2**21, 6 * 24 * 24) == 512
    assert predict_batch_size((1, 28, 28), 2**21, 16 * 28 * 28) == 128


def test_fixed_size_batches_pad_with_zero_images_and_scale_uint8_pixels():
    X = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2) * 10
    batches = list(fixed_size_batches(X[:, None], values=4 * 2))  # up to 8 images a pass
    assert len(batches) == 1
    batch, n_real = batches[0]
    assert batch.shape == (8, 1, 2, 2) and n_real == 5  # 5 images: a pass of 8
    batch, n_real = fixed_size_batch(X[:, None], 0, 8, np.float32)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch[:5, 0], X / np.float32(255), rtol=1e-7)
    np.testing.assert_array_equal(batch[5:], 0.0)
    # passes of predict_batch_size images; the last one padded, its real count given
    X = np.random.default_rng(0).random((20, 1, 40, 40))  # 8 images of 1,600 values a pass
    passes = list(fixed_size_batches(X, values=2**14))
    assert [len(b) for b, _ in passes] == [8, 8, 4] and [n for _, n in passes] == [8, 8, 4]
    np.testing.assert_array_equal(np.concatenate([b[:n] for b, n in passes]), X)
    assert all(b.dtype == np.float64 for b, _ in passes)  # X's own dtype by default


def test_passes_are_powers_of_two_and_one_image_is_one_pass():
    assert prediction_passes(1, 512) == [(0, 1)]
    assert prediction_passes(3, 512) == [(0, 4)]
    assert prediction_passes(1000, 512) == [(0, 512), (512, 512)]
    assert prediction_passes(1030, 512) == [(0, 512), (512, 512), (1024, 8)]
    assert prediction_passes(1024, 512) == [(0, 512), (512, 512)]
    assert prediction_passes(0, 512) == []


def test_a_prediction_is_the_same_bit_for_bit_in_any_pass_of_its_size(backend):
    """An image's scores do not depend on which images share its pass, and passes of
    another size change them by rounding only (the matrix library's summation
    order follows the shape)."""
    specs = (S.Conv2d(8, 3, padding=1), S.ReLU(), S.Flatten(), S.Linear(5))
    shape = (1, 6, 6)
    engine = get_backend(backend)
    model = engine.build(specs, shape, init_weights(specs, shape, np.random.default_rng(0)))
    X = np.random.default_rng(1).random((40, *shape), dtype=np.float32)
    others = np.random.default_rng(2).random((30, *shape), dtype=np.float32)
    alone = engine.predict_output(model, X[:3])  # a pass of 4
    np.testing.assert_array_equal(engine.predict_output(model, X[:4])[:3], alone)
    np.testing.assert_array_equal(
        engine.predict_output(model, np.concatenate([X[:3], others[:1]]))[:3], alone)
    np.testing.assert_allclose(engine.predict_output(model, X)[:3], alone, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(engine.predict_proba(model, X[:3]), softmax(alone))


def test_softmax_rows_are_probabilities_even_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    p = softmax(logits.copy())
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1], 1 / 3)
    np.testing.assert_allclose(p[2], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    np.testing.assert_allclose(softmax(logits[2:] + 500.0), p[2:])  # shift-invariant


def test_regression_losses_by_hand():
    r = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(REGRESSION_LOSSES["squared_error"](r),
                               [4.5, 0.5, 0.125, 0.0, 0.125, 0.5, 4.5])
    # quadratic up to |r| = 1 (a standard deviation), then linear: 0.5 + (|r| - 1)
    np.testing.assert_allclose(REGRESSION_LOSSES["huber"](r),
                               [2.5, 0.5, 0.125, 0.0, 0.125, 0.5, 2.5])
    np.testing.assert_allclose(REGRESSION_LOSSES["absolute_error"](r),
                               [3.0, 1.0, 0.5, 0.0, 0.5, 1.0, 3.0])
    assert set(REGRESSION_DERIVATIVES) == set(REGRESSION_LOSSES)


@pytest.mark.parametrize("kind", sorted(REGRESSION_LOSSES))
def test_regression_derivatives_are_the_finite_difference_ones(kind):
    # away from the kinks (0 for the absolute error, +-1 for Huber's)
    r = np.array([-4.0, -1.3, -0.7, -0.2, 0.3, 0.9, 1.1, 2.5])
    loss, derivative = REGRESSION_LOSSES[kind], REGRESSION_DERIVATIVES[kind]
    numeric = (loss(r + 1e-6) - loss(r - 1e-6)) / 2e-6
    np.testing.assert_allclose(derivative(r), numeric, atol=1e-8)


@pytest.mark.parametrize("kind", sorted(REGRESSION_LOSSES))
def test_the_torch_backend_computes_the_same_regression_losses(kind):
    torch = pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from sklearn_cnn.backends.numpy.losses import regression_loss
    from sklearn_cnn.backends.torch.backend import _losses

    rng = np.random.default_rng(0)
    outputs, targets = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3))
    per_sample = _losses(torch.from_numpy(outputs), torch.from_numpy(targets),
                         TrainingConfig(loss=kind)).numpy()
    np.testing.assert_allclose(REGRESSION_LOSSES[kind](torch.from_numpy(outputs - targets))
                               .numpy(), REGRESSION_LOSSES[kind](outputs - targets))
    np.testing.assert_allclose(per_sample.mean(), regression_loss(outputs, targets, None,
                                                                  kind)[0], rtol=1e-12)


def test_same_optimizer_lets_only_the_loss_and_learning_rate_change():
    config = TrainingConfig()
    assert not same_optimizer(None, config)
    assert same_optimizer(config, config)
    for loss_only in ({"learning_rate_init": 0.5}, {"alpha": 1.0}, {"max_grad_norm": 2.0},
                      {"label_smoothing": 0.1}, {"loss": "huber"}):
        assert same_optimizer(config, replace(config, **loss_only)), loss_only
    for other in ({"solver": "sgd"}, {"momentum": 0.5}, {"nesterovs_momentum": False},
                  {"beta_1": 0.8}, {"beta_2": 0.9}, {"epsilon": 1e-6}, {"frozen_layers": 2},
                  {"mixed_precision": "bfloat16"}):
        assert not same_optimizer(config, replace(config, **other)), other


def test_mean_loss_weights_the_batches_by_their_size():
    assert mean_loss([1.0, 4.0], [3, 1]) == pytest.approx(7 / 4)
    assert mean_loss([], []) == 0.0


def test_adaptive_pool_windows_are_pytorchs():
    # 5 into 3: windows [0, 2), [1, 4), [3, 5): floor(i * 5 / 3) to ceil((i + 1) * 5 / 3)
    np.testing.assert_allclose(adaptive_pool_matrix(5, 3, np.float64), [
        [1 / 2, 1 / 2, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, 1 / 2, 1 / 2]])
    np.testing.assert_array_equal(adaptive_pool_matrix(4, 4, np.float32), np.eye(4))
    np.testing.assert_array_equal(adaptive_pool_matrix(1, 3, np.float32), np.ones((3, 1)))
    assert adaptive_pool_matrix(7, 2, np.float32).dtype == np.float32
    for n_in, n_out in [(7, 3), (6, 4), (2, 5), (13, 6)]:
        matrix = adaptive_pool_matrix(n_in, n_out, np.float64)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)  # averages
        assert np.all(matrix.sum(axis=0) > 0)  # every input reaches an output


def test_needs_specs_names_what_a_custom_module_cannot_do():
    error = needs_specs("layer outputs")
    assert isinstance(error, ValueError)
    assert str(error).startswith("layer outputs needs an architecture made of "
                                 "sklearn_cnn.layers specs")
    assert "custom torch.nn.Module" in str(error)


def test_get_backend_by_name():
    numpy_backend = get_backend("numpy")
    assert isinstance(numpy_backend, NumpyBackend) and numpy_backend.name == "numpy"
    assert get_backend("numpy") is numpy_backend  # one instance
    with pytest.raises(ValueError, match=r"Unknown backend 'jax'; expected one of "
                                         r"\['numpy', 'torch'\]"):
        get_backend("jax")


def test_get_backend_names_the_extra_only_for_a_missing_requirement(monkeypatch):
    # a backend module that fails to import for a reason of its own: that error, as is
    monkeypatch.setitem(BACKENDS, "broken", "sklearn_cnn_no_such_module")
    with pytest.raises(ModuleNotFoundError, match="sklearn_cnn_no_such_module") as caught:
        get_backend("broken")
    assert "pip install" not in str(caught.value)


def test_library_works_without_torch_and_names_the_extra():
    code = (
        "import sys\n"
        "class Absent:  # as if torch and skorch were not installed\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'skorch', 'torchvision'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import numpy as np\n"
        "from sklearn_cnn import CNNClassifier\n"
        "X, y = np.random.rand(20, 6, 6), np.arange(20) % 2\n"
        "CNNClassifier(max_iter=1).fit(X, y).predict(X)\n"
        "try:\n"
        "    CNNClassifier(backend='torch').fit(X, y)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'sklearn-cnn[torch]'" in out


def test_a_backend_without_custom_modules_refuses_them():
    with pytest.raises(ValueError, match=r"torch\.nn\.Module needs backend='torch'; got "
                                         r"backend='numpy'"):
        get_backend("numpy").build_module(object(), (1, 8, 8), 2, 0, config=TrainingConfig())


def test_the_default_portable_form_of_a_model_is_the_model_itself():
    engine = get_backend("numpy")
    specs, shape = (S.Flatten(), S.Linear(2)), (1, 2, 2)
    model = engine.build(specs, shape, init_weights(specs, shape, np.random.default_rng(0)))
    assert engine.to_portable(model) is model
    assert engine.from_portable(specs, shape, model) is model
    assert TrainingConfig in engine.portable_types()
