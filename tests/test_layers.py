"""Layer specs (layers.py): output sizes, shapes, parameters, and what they refuse."""

import dataclasses
import math

import numpy as np
import pytest

from sklearn_cnn import layers as S
from sklearn_cnn.layers import conv_output_size, sequence_shapes, to_python


@pytest.mark.parametrize("n, f, p, s, expected", [
    (32, 5, 2, 1, 32),   # the seeds' worked example: (32 + 2*2 - 5) / 1 + 1
    (28, 5, 2, 1, 28),   # their exercise: padding 2 keeps a 5x5 filter's 28 pixels
    (28, 5, 0, 1, 24),   # LeNet's first convolution on MNIST: 6x24x24
    (5, 3, 0, 1, 3),     # a 3x3 filter on a 5x5 image without padding
    (13, 1, 0, 1, 13),   # a 1x1 convolution keeps the size
    (24, 2, 0, 2, 12),   # 2x2 pooling halves it
    (7, 3, 0, 2, 3),     # (7 - 3) / 2 + 1
    (8, 3, 1, 2, 4),     # floor((8 + 2 - 3) / 2) + 1 = floor(3.5) + 1
    (6, 3, 0, 2, 2),     # floor(1.5) + 1: the last window that would overhang is dropped
    (3, 5, 0, 1, -1),    # a filter larger than the input fits nowhere: <= 0
])
def test_conv_output_size_is_the_textbook_formula(n, f, p, s, expected):
    assert conv_output_size(n, f, p, s) == expected == math.floor((n + 2 * p - f) / s) + 1


def test_conv2d_output_shapes_for_each_padding():
    assert S.Conv2d(6, 5).output_shape((1, 28, 28)) == (6, 24, 24)
    assert S.Conv2d(6, 5, padding=2).output_shape((1, 28, 28)) == (6, 28, 28)
    assert S.Conv2d(4, 3, padding="valid").output_shape((2, 9, 7)) == (4, 7, 5)
    # "same": ceil(n / stride), whatever the kernel; odd padding goes to the bottom/right
    same = S.Conv2d(4, 4, stride=2, padding="same")
    assert same.output_shape((1, 9, 8)) == (4, 5, 4)
    assert same.resolve_padding((1, 9, 8)) == (1, 2, 1, 1)
    assert S.Conv2d(4, (3, 1), stride=(1, 2), padding=(1, 0, 2, 3)).output_shape(
        (1, 5, 5)) == (4, 4, 5)  # (5 + 1 + 0 - 3) + 1, (5 + 2 + 3 - 1) // 2 + 1
    assert S.Conv2d(4, 3).kernel == (3, 3) and S.Conv2d(4, 3, stride=(2, 1)).strides == (2, 1)


def test_pooling_and_reshaping_shapes():
    assert S.MaxPool2d(2).output_shape((6, 24, 24)) == (6, 12, 12)
    assert S.MaxPool2d(2).strides == (2, 2)  # stride None: the window
    assert S.MaxPool2d(3, stride=2, padding=1).output_shape((64, 112, 112)) == (64, 56, 56)
    assert S.AvgPool2d(2, stride=1).output_shape((3, 5, 4)) == (3, 4, 3)
    assert S.AdaptiveAvgPool2d((3, 2)).output_shape((5, 17, 4)) == (5, 3, 2)
    assert S.AdaptiveAvgPool2d(6).output_shape((5, 2, 2)) == (5, 6, 6)
    assert S.GlobalAvgPool2d().output_shape((7, 3, 3)) == (7,)
    assert S.Flatten().output_shape((16, 4, 4)) == (256,)
    assert S.Linear(120).output_shape((256,)) == (120,)
    for unchanged in (S.ReLU(), S.Tanh(), S.Sigmoid(), S.LeakyReLU(0.2), S.Dropout(0.3),
                      S.BatchNorm()):
        assert unchanged.output_shape((3, 5, 5)) == (3, 5, 5)
    block = S.Residual((S.Conv2d(8, 3, stride=2, padding=1), S.BatchNorm()),
                       (S.Conv2d(8, 1, stride=2),))
    assert block.output_shape((4, 8, 8)) == (8, 4, 4)
    assert S.Residual((S.Conv2d(4, 3, padding=1),)).output_shape((4, 5, 5)) == (4, 5, 5)
    lenet = (S.Conv2d(6, 5), S.ReLU(), S.MaxPool2d(2), S.Conv2d(16, 5), S.ReLU(),
             S.MaxPool2d(2), S.Flatten(), S.Linear(120))
    assert sequence_shapes(lenet, (1, 28, 28)) == [
        (1, 28, 28), (6, 24, 24), (6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 8, 8),
        (16, 4, 4), (256,), (120,)]


@pytest.mark.parametrize("make, shape, message", [
    (lambda: S.Conv2d(0), None, "out_channels must be a positive int, got 0"),
    (lambda: S.Conv2d(4, 0), None, "kernel_size must be a positive int or a pair"),
    (lambda: S.Conv2d(4, (3, 3, 3)), None, "kernel_size must be a positive int or a pair"),
    (lambda: S.Conv2d(4, True), None, "kernel_size must be a positive int or a pair"),
    (lambda: S.Conv2d(4, 3, stride=0), None, "stride must be a positive int or a pair"),
    (lambda: S.Conv2d(4, 3, padding="full"), None, "padding must be an int, 'same' or 'valid'"),
    (lambda: S.MaxPool2d(2, padding=2), None, r"padding must be an int between 0 and half "
                                              r"the window \(2, 2\)"),
    (lambda: S.AvgPool2d(2, stride=(1, 0)), None, "stride must be a positive int or a pair"),
    (lambda: S.AdaptiveAvgPool2d(0), None, "output_size must be a positive int or a pair"),
    (lambda: S.Linear(0), None, "out_features must be a positive int, got 0"),
    (lambda: S.Dropout(1.0), None, r"Dropout p must be in \[0, 1\), got 1.0"),
    (lambda: S.Conv2d(4, 5), (1, 3, 3), "Conv2d kernel 5x5 does not fit input 3x3"),
    (lambda: S.Conv2d(4, 3), (64,), r"Conv2d needs feature maps \(C, H, W\), got shape "
                                    r"\(64,\)"),
    (lambda: S.MaxPool2d(4), (2, 3, 8), r"MaxPool2d window \(4, 4\) is larger than the "
                                        r"feature map 3x8"),
    (lambda: S.GlobalAvgPool2d(), (10,), "GlobalAvgPool2d needs feature maps"),
    (lambda: S.Linear(10), (16, 4, 4), "Linear needs a vector input .*put a Flatten"),
    (lambda: S.Residual((S.Conv2d(8, 3, padding=1),)), (4, 6, 6),
     r"Residual body gives \(8, 6, 6\) but shortcut gives \(4, 6, 6\); add a projection"),
])
def test_specs_refuse_what_they_cannot_compute(make, shape, message):
    with pytest.raises(ValueError, match=message):
        spec = make()
        spec.output_shape(shape)


def test_param_and_buffer_shapes_in_canonical_layout():
    assert S.Conv2d(6, 5).param_shapes((3, 32, 32)) == {"weight": (6, 3, 5, 5), "bias": (6,)}
    assert S.Conv2d(6, (5, 3), bias=False).param_shapes((2, 9, 9)) == {"weight": (6, 2, 5, 3)}
    assert S.Linear(10).param_shapes((84,)) == {"weight": (10, 84), "bias": (10,)}
    assert S.Linear(10, bias=False).param_shapes((84,)) == {"weight": (10, 84)}
    assert S.BatchNorm().param_shapes((16, 4, 4)) == {"weight": (16,), "bias": (16,)}
    assert S.BatchNorm().buffer_shapes((120,)) == {"running_mean": (120,),
                                                   "running_var": (120,)}
    for free in (S.ReLU(), S.MaxPool2d(2), S.Flatten(), S.Dropout(), S.GlobalAvgPool2d()):
        assert free.param_shapes((3, 4, 4)) == {} == free.buffer_shapes((3, 4, 4))


def n_params(spec, in_shape) -> int:
    return sum(math.prod(shape) for shape in spec.param_shapes(in_shape).values())


def test_parameter_counts_of_the_teaching_text():
    """Seed 002's worked counts for its common architecture on 32x32x3 images: 224
    for 8 filters of 3x3x3, 1,168 for 16 filters of 3x3x8, 200,832 for a dense layer
    of 128 on its 8x14x14 pooled maps, 1,290 for the 10-class output layer."""
    network = (S.Conv2d(8, 3), S.ReLU(), S.MaxPool2d(2), S.Conv2d(16, 3), S.ReLU(),
               S.MaxPool2d(2), S.Flatten(), S.Linear(128), S.ReLU(), S.Linear(10))
    shapes = sequence_shapes(network, (3, 32, 32))
    counts = [n_params(spec, shape) for spec, shape in zip(network, shapes, strict=False)]
    assert counts[0] == 224 and counts[3] == 1168 and counts[-1] == 1290
    assert sum(counts[1:3]) == sum(counts[4:7]) == 0  # activations, pooling, flatten
    assert n_params(S.Linear(128), (8 * 14 * 14,)) == 200_832  # as the text flattens
    # the same counts through the package's own "simple" architecture (padding "same")
    from sklearn_cnn.architectures import build_architecture

    simple, _ = build_architecture("simple", (3, 32, 32), 10)
    simple_counts = [n_params(spec, shape) for spec, shape in
                     zip(simple, sequence_shapes(simple, (3, 32, 32)), strict=False)]
    assert [c for c in simple_counts if c][:2] == [224, 1168] and simple_counts[-1] == 1290


def test_specs_are_frozen_hashable_values():
    conv = S.Conv2d(4, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.out_channels = 8
    assert conv == S.Conv2d(4, 3, stride=1, padding=0) and conv != S.Conv2d(4, 5)
    assert len({conv, S.Conv2d(4, 3), S.Conv2d(4, 5)}) == 2
    for cls in S.SPEC_TYPES:
        assert dataclasses.is_dataclass(cls) and issubclass(cls, S.LayerSpec)
        assert cls.__dataclass_params__.frozen, cls.__name__


def test_numpy_numbers_become_python_values():
    spec = S.Conv2d(np.int64(4), np.array([3, 2]), stride=np.int32(2), padding=np.int8(1))
    assert spec == S.Conv2d(4, (3, 2), stride=2, padding=1)
    assert hash(spec) == hash(S.Conv2d(4, (3, 2), stride=2, padding=1))
    assert type(spec.out_channels) is int and spec.kernel_size == (3, 2)
    assert type(S.Dropout(np.float32(0.25)).p) is float
    assert to_python(np.float64(0.5)) == 0.5 and type(to_python(np.float64(0.5))) is float
    assert to_python([np.int64(1), 2]) == (1, 2)
    assert to_python(np.array(7)) == 7 and to_python("same") == "same"
