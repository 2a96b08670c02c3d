"""Layer specs as torch modules (backends/torch/modules.py): builders, canonical weights."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from backends.spec_cases import GRADIENT_CASES  # noqa: E402

from sklearn_cnn import layers as S  # noqa: E402
from sklearn_cnn import list_architectures, summary  # noqa: E402
from sklearn_cnn._weights import init_weights, weight_shapes  # noqa: E402
from sklearn_cnn.architectures import build_architecture  # noqa: E402
from sklearn_cnn.backends.numpy import BUILDERS as NUMPY_BUILDERS  # noqa: E402
from sklearn_cnn.backends.torch import BUILDERS as TORCH_BUILDERS  # noqa: E402
from sklearn_cnn.backends.torch import (  # noqa: E402
    build_module,
    export_canonical,
    load_canonical,
)
from sklearn_cnn.backends.torch.modules import (  # noqa: E402
    HalvingMaxPool2d,
    forward_to,
    prediction_module,
    rewrites,
)


def test_both_builder_tables_cover_exactly_the_spec_types():
    assert set(TORCH_BUILDERS) == set(NUMPY_BUILDERS) == set(S.SPEC_TYPES)


@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_build_module_gives_the_spec_shapes_and_the_canonical_keys(case):
    specs, in_shape = GRADIENT_CASES[case]
    module = build_module(tuple(specs), in_shape)
    assert len(module) == len(specs)
    expected = in_shape
    for spec in specs:
        expected = spec.output_shape(expected)
    with torch.no_grad():
        assert tuple(module.eval()(torch.zeros((2, *in_shape))).shape) == (2, *expected)
    state = {k: tuple(v.shape) for k, v in module.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    assert state == weight_shapes(tuple(specs), in_shape)


def test_same_padding_with_an_even_kernel_pads_bottom_right_as_the_spec_says():
    spec = S.Conv2d(1, 2, padding="same")  # one row and column of padding: bottom, right
    module = build_module((spec,), (1, 3, 3))
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]]))
        module[0].bias.zero_()
        x = torch.arange(9.0).reshape(1, 1, 3, 3)
        out = module(x)
    # each output is the input one down and one right of it: zero past the edge
    np.testing.assert_array_equal(out[0, 0].numpy(), [[4, 5, 0], [7, 8, 0], [0, 0, 0]])


def test_forward_to_stops_after_the_layer_named_residual_blocks_entered():
    specs = (S.Conv2d(3, 3, padding=1), S.ReLU(),
             S.Residual((S.Conv2d(3, 3, padding=1, bias=False), S.BatchNorm(), S.ReLU()),
                        (S.Conv2d(3, 1, bias=False),)),
             S.GlobalAvgPool2d(), S.Linear(2))
    module = build_module(specs, (2, 5, 5)).eval()
    x = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after_relu = module[1](module[0](x))
        torch.testing.assert_close(forward_to(module, x, "1"), after_relu)
        body = module[2].body
        torch.testing.assert_close(forward_to(module, x, "2.body.1"),
                                   body[1](body[0](after_relu)))
        torch.testing.assert_close(forward_to(module, x, "2.shortcut.0"),
                                   module[2].shortcut[0](after_relu))
        torch.testing.assert_close(forward_to(module, x, "4"), module(x))


@pytest.mark.parametrize("activation", [S.ReLU(), S.Tanh(), S.LeakyReLU(0.1)])
def test_prediction_module_folds_batchnorm_and_pools_before_monotone_activations(activation):
    """The rewritten module computes the module's outputs up to rounding, with the
    BatchNorm after each convolution folded into it and each activation moved after
    its max-pool, inside residual blocks too; the module itself is left as it was."""
    specs = (S.Conv2d(4, 3, padding=1), S.BatchNorm(), activation, S.MaxPool2d(2),
             S.Residual((S.Conv2d(4, 3, padding=1), S.BatchNorm(), S.ReLU(),
                         S.Conv2d(4, 3, padding=1, bias=False), S.BatchNorm())),
             S.ReLU(), S.Flatten(), S.Linear(3))
    rng = np.random.default_rng(0)
    weights = {key: rng.uniform(0.5, 1.5, value.shape) if key.endswith("running_var")
               else value + rng.normal(0, 0.3, value.shape)
               for key, value in init_weights(specs, (2, 8, 8), rng).items()}
    module = build_module(specs, (2, 8, 8)).double()
    load_canonical(module, weights)
    module.eval()
    assert rewrites(module) and not rewrites(build_module((S.Conv2d(4, 3), S.ReLU()), (2, 8, 8)))
    # nothing to fold, but an activation to move (LeNet's case)
    assert rewrites(build_module((S.Conv2d(4, 3), S.ReLU(), S.MaxPool2d(2)), (2, 8, 8)))
    fast = prediction_module(module)
    kinds = [type(layer) for layer in fast]
    assert torch.nn.BatchNorm2d not in kinds and len(fast) == len(module) - 1
    assert kinds[1] is HalvingMaxPool2d  # the pool, halving, before the activation
    x = torch.from_numpy(rng.normal(size=(5, 2, 8, 8)))
    with torch.no_grad():
        torch.testing.assert_close(fast(x), module(x), rtol=1e-12, atol=1e-12)
    for key, value in export_canonical(module).items():
        np.testing.assert_array_equal(value, weights[key])


@pytest.mark.parametrize("channels_last", [False, True])
def test_halving_max_pool_gives_max_pool2d_values(channels_last):
    """Odd sides (the last row and column left out), ties, NaN and -inf, both
    memory layouts; only plain 2x2 pools with stride 2 are replaced."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(-2, 3, size=(3, 4, 7, 9)).astype(np.float32))
    x[0, 0, 0, 0], x[1, 2, 3, 4], x[2, 3, 5, 1] = float("nan"), float("-inf"), float("inf")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = torch.nn.MaxPool2d(2)(x)
    got = HalvingMaxPool2d()(x)
    torch.testing.assert_close(got, expected, equal_nan=True, rtol=0, atol=0)
    for pool in (torch.nn.MaxPool2d(3, 2), torch.nn.MaxPool2d(2, padding=1),
                 torch.nn.MaxPool2d(2, ceil_mode=True), torch.nn.MaxPool2d(2, 1)):
        module = torch.nn.Sequential(pool, torch.nn.ReLU()).eval()
        assert not rewrites(module) and type(prediction_module(module)[0]) is type(pool)
    assert rewrites(torch.nn.Sequential(torch.nn.MaxPool2d((2, 2))))


def test_weights_are_checked_when_loaded():
    module = build_module((S.Conv2d(2, 3), S.Flatten(), S.Linear(2)), (1, 5, 5))
    weights = export_canonical(module)
    weights["2.weight"] = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"2\.weight"):
        load_canonical(module, weights)
    del weights["2.weight"]
    with pytest.raises(ValueError, match="missing"):
        load_canonical(module, weights)


def test_canonical_weights_load_in_the_modules_dtype_and_export_as_copies():
    specs, shape = (S.Conv2d(2, 3), S.BatchNorm(), S.Flatten(), S.Linear(2)), (1, 5, 5)
    weights = {k: v.astype(np.float64) for k, v in
               init_weights(specs, shape, np.random.default_rng(0)).items()}
    weights["1.running_var"] = np.array([0.5, 2.0])
    module = build_module(specs, shape).double()
    load_canonical(module, weights)
    exported = export_canonical(module)
    assert set(exported) == set(weights)  # num_batches_tracked is torch's own
    for key, value in weights.items():
        np.testing.assert_array_equal(exported[key], value)  # float64 stays exact
        assert exported[key].dtype == np.float64
    exported["0.weight"][:] = 7.0
    assert not torch.any(module[0].weight == 7.0)


@pytest.mark.parametrize("config", [{}, {"width": 0.5}, {"batch_norm": True},
                                    {"dropout": 0.3, "activation": "tanh"}], ids=str)
@pytest.mark.parametrize("arch", list_architectures())
def test_summary_counts_what_torch_counts(arch, config):
    for shape in [(3, 32, 32), (1, 8, 8)]:
        specs, _ = build_architecture(arch, shape, 10, **config)
        with torch.device("meta"):  # shapes without memory: VGG-16 holds 15M weights
            module = build_module(specs, shape)
        assert summary(arch, shape, 10, **config).total_params == \
            sum(p.numel() for p in module.parameters())
