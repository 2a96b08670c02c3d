"""Property-based tests of the NumPy convolution and pooling layers (hypothesis).

Over random shapes, kernels, strides, paddings and channel counts: a layer's output
shape is its spec's ``output_shape``, which is ``conv_output_size`` per axis, which
counts the window positions; its values are the loop oracle's (tests/reference.py);
its gradients are the finite differences'. Derandomized, so every run (and CI)
tries the same examples.
"""

import math

import numpy as np
import pytest
import reference
from backends.spec_cases import check_gradients, make_net
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_cnn import layers as S
from sklearn_cnn.layers import conv_output_size

SETTINGS = {"deadline": None, "derandomize": True, "database": None}

dims = st.integers(1, 3)


def pair(draw, values):
    """An int when both entries are equal (the spec's short form), else a tuple."""
    first, second = draw(values), draw(values)
    return first if first == second else (first, second)


@st.composite
def conv_configs(draw):
    """``(spec, (C, H, W), n, seed)``: 1-3 channels in and out, 3-7 pixels a side,
    kernels and strides of 1-3, padding as an int, a 4-tuple, "same" or "valid"."""
    padding = draw(st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"]),
                             st.tuples(*[st.integers(0, 2)] * 4)))
    spec = S.Conv2d(draw(dims), pair(draw, dims), stride=pair(draw, dims), padding=padding,
                    bias=draw(st.booleans()))
    in_shape = (draw(dims), draw(st.integers(3, 7)), draw(st.integers(3, 7)))
    return spec, in_shape, draw(st.integers(1, 2)), draw(st.integers(0, 2**16))


@st.composite
def pool_configs(draw):
    """``(spec, (C, H, W), n, seed)`` of a MaxPool2d or AvgPool2d: windows of 1-3,
    stride 1-3 or None (the window), padding up to half the window."""
    kind = draw(st.sampled_from([S.MaxPool2d, S.AvgPool2d]))
    kernel = pair(draw, dims)
    stride = None if draw(st.booleans()) else pair(draw, dims)
    padding = draw(st.integers(0, min(S.MaxPool2d(kernel).kernel) // 2))
    spec = kind(kernel, stride=stride, padding=padding)
    in_shape = (draw(dims), draw(st.integers(3, 7)), draw(st.integers(3, 7)))
    return spec, in_shape, draw(st.integers(1, 2)), draw(st.integers(0, 2**16))


def forward(spec, in_shape, n, seed):
    net = make_net([spec], in_shape, seed)
    x = np.random.default_rng(seed + 1).normal(size=(n, *in_shape))
    return net, x, net.forward(x, training=False)


@settings(max_examples=100, **SETTINGS)
@given(conv_configs())
def test_conv_shape_is_the_specs_and_values_are_the_loop_oracles(config):
    spec, in_shape, n, seed = config
    net, x, out = forward(spec, in_shape, n, seed)
    top, bottom, left, right = spec.resolve_padding(in_shape)
    (kh, kw), (sh, sw) = spec.kernel, spec.strides
    per_axis = (conv_output_size(in_shape[1] + top + bottom, kh, 0, sh),
                conv_output_size(in_shape[2] + left + right, kw, 0, sw))
    assert out.shape == (n, *spec.output_shape(in_shape)) == (n, spec.out_channels, *per_axis)
    if isinstance(spec.padding, int):  # symmetric: the textbook formula with p
        assert per_axis == (conv_output_size(in_shape[1], kh, spec.padding, sh),
                            conv_output_size(in_shape[2], kw, spec.padding, sw))
    if spec.padding == "same":
        assert per_axis == (math.ceil(in_shape[1] / sh), math.ceil(in_shape[2] / sw))
    params = net.layers()[0].params
    bias = params.get("bias", np.zeros(spec.out_channels))
    expected = reference.conv2d(x, params["weight"], bias, spec.strides,
                                (top, bottom, left, right))
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=100, **SETTINGS)
@given(pool_configs())
def test_pool_shape_is_the_specs_and_values_are_the_loop_oracles(config):
    spec, in_shape, n, seed = config
    _, x, out = forward(spec, in_shape, n, seed)
    (kh, kw), (sh, sw), p = spec.kernel, spec.strides, spec.padding
    per_axis = (conv_output_size(in_shape[1], kh, p, sh), conv_output_size(in_shape[2], kw, p, sw))
    assert out.shape == (n, *spec.output_shape(in_shape)) == (n, in_shape[0], *per_axis)
    # max pooling pads with -inf (never picked), average pooling with counted zeros
    maximum = isinstance(spec, S.MaxPool2d)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)),
                    constant_values=-np.inf if maximum else 0.0)
    expected = reference.pool2d(padded, spec.kernel, spec.strides,
                                np.max if maximum else np.mean)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=30, **SETTINGS)
@given(conv_configs())
def test_conv_gradients_match_finite_differences(config):
    spec, in_shape, n, seed = config
    check_gradients([spec], in_shape, training=True, n=n, seed=seed)


@settings(max_examples=30, **SETTINGS)
@given(pool_configs())
def test_pool_gradients_match_finite_differences(config):
    spec, in_shape, n, seed = config
    check_gradients([spec], in_shape, training=True, n=n, seed=seed)


@settings(max_examples=300, **SETTINGS)
@given(n=st.integers(1, 40), f=st.integers(1, 12), p=st.integers(0, 5), s=st.integers(1, 6))
def test_conv_output_size_counts_the_window_positions(n, f, p, s):
    padded = n + 2 * p
    positions = [start for start in range(0, padded, s) if start + f <= padded]
    size = conv_output_size(n, f, p, s)
    assert max(size, 0) == len(positions)
    # the specs refuse a window that fits nowhere, and agree where it fits
    conv = S.Conv2d(1, (f, 1), stride=(s, 1), padding=(p, p, 0, 0))
    if positions:
        assert conv.output_shape((1, n, 1)) == (1, len(positions), 1)
    else:
        with pytest.raises(ValueError, match="does not fit"):
            conv.output_shape((1, n, 1))
    if 2 * p <= f:  # pooling pads at most half its window
        pool = S.AvgPool2d(f, stride=s, padding=p)
        if positions:
            assert pool.output_shape((2, n, n)) == (2, len(positions), len(positions))
        else:
            with pytest.raises(ValueError, match="larger than the feature map"):
                pool.output_shape((2, n, n))


# --- hyperparameters: NumPy numbers and any sequence type mean what Python's do ---

INT_TYPES = (int, np.int8, np.int32, np.int64, np.uint16)
FLOAT_TYPES = (float, np.float16, np.float32, np.float64)
SEQUENCES = (tuple, list, np.array)


@given(data=st.data())
@settings(max_examples=20, **SETTINGS)
def test_numpy_numbers_and_sequences_train_as_python_ones(data):
    from sklearn_cnn import CNNClassifier

    draw = data.draw
    as_int, as_float = (draw(st.sampled_from(t)) for t in (INT_TYPES, FLOAT_TYPES))
    sequence = draw(st.sampled_from(SEQUENCES))
    values = {"kernel_size": draw(st.sampled_from([1, 3])),
              "batch_size": draw(st.integers(4, 40)), "max_iter": draw(st.integers(1, 2)),
              "n_iter_no_change": draw(st.integers(1, 5))}
    floats = {"learning_rate_init": draw(st.floats(1e-3, 0.05)),
              "alpha": draw(st.floats(0, 0.01)), "dropout": draw(st.floats(0, 0.5)),
              "label_smoothing": draw(st.floats(0, 0.3)), "width": draw(st.floats(0.5, 1.5))}
    filters = draw(st.lists(st.integers(1, 4), min_size=2, max_size=2))
    given_params = {**{k: as_int(v) for k, v in values.items()},
                    **{k: as_float(v) for k, v in floats.items()},
                    "filters": sequence([as_int(f) for f in filters]),
                    "hidden_units": sequence([as_int(8)])}
    # the same numbers as Python values (a float16 is the float it rounds to)
    plain = {**values, **{k: float(v) for k, v in given_params.items() if k in floats},
             "filters": tuple(filters), "hidden_units": (8,)}
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 6, 6)).astype(np.float32), np.arange(40) % 3
    fits = [CNNClassifier("simple", random_state=0, **params).fit(X, y)
            for params in (given_params, plain)]
    assert fits[0].specs_ == fits[1].specs_
    for key, value in fits[1].get_weights().items():
        np.testing.assert_array_equal(fits[0].get_weights()[key], value, err_msg=key)
