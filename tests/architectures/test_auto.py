"""The default network (architectures/auto.py): stages and widths sized to the image."""

import pytest

from sklearn_cnn import summary
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.architectures.auto import default_filters
from sklearn_cnn.layers import BatchNorm, Conv2d, Dropout, Linear, MaxPool2d

#: side -> stages, by hand: halve the side until it is 7 or less (28 -> 14 -> 7: 2;
#: 32 -> 16 -> 8 -> 4: 3), at least twice (8 -> 4 -> 2: 2), at most four times
#: (224 -> 112 -> 56 -> 28 -> 14 -> 7 would be 5: 4)
STAGES = {1: 2, 5: 2, 8: 2, 14: 2, 15: 2, 16: 2, 17: 2, 28: 2, 32: 3, 64: 4, 100: 4, 224: 4}


@pytest.mark.parametrize("side", sorted(STAGES))
def test_stages_halve_the_image_to_7_pixels_or_less(side):
    filters = default_filters((3, side, side))
    assert len(filters) == STAGES[side]
    first = 32 if side <= 16 else 16  # small images: a stage costs 16 times less
    assert filters == tuple(first * 2**i for i in range(len(filters)))
    assert default_filters((3, side, side + 50)) == filters  # the shorter side decides


def test_the_docstrings_networks():
    # 28x28: conv 16 -> pool -> conv 32 -> pool -> dense 128
    specs, _ = build_architecture("auto", (1, 28, 28), 10)
    assert [s.out_channels for s in specs if isinstance(s, Conv2d)] == [16, 32]
    assert [s.out_features for s in specs if isinstance(s, Linear)] == [128, 10]
    assert sum(isinstance(s, MaxPool2d) for s in specs) == 2
    # the 8x8 digits: conv 32 -> pool -> conv 64 -> pool -> dense 128
    specs, _ = build_architecture("auto", (1, 8, 8), 10)
    assert [s.out_channels for s in specs if isinstance(s, Conv2d)] == [32, 64]


def auto_by_hand(shape, filters, n_classes=10, hidden=128, batch_norm=True):
    """(9 * c_in) * c_out a 3x3 convolution (no bias before BatchNorm: 2 * c_out its
    scale and shift instead), "same" padding and a 2x2 pool halving each stage, then
    (inputs + 1) * outputs each dense layer."""
    (c_in, h, w), total = shape, 0
    for c_out in filters:
        total += 9 * c_in * c_out + (2 * c_out if batch_norm else c_out)
        c_in, h, w = c_out, h // 2, w // 2
    return total + (c_in * h * w + 1) * hidden + (hidden + 1) * n_classes


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32), (3, 100, 60)])
def test_parameter_counts(shape):
    assert summary("auto", shape, 10).total_params == auto_by_hand(shape,
                                                                   default_filters(shape))


def test_batch_norm_only_on_images_of_8_pixels_or_more():
    assert BatchNorm() in build_architecture("auto", (1, 8, 8), 3)[0]
    for small in [(1, 7, 7), (1, 1, 40)]:  # a thumbnail, a row of flat features
        specs, _ = build_architecture("auto", small, 3)
        assert BatchNorm() not in specs
        assert all(s.bias for s in specs if isinstance(s, Conv2d))
    assert BatchNorm() in build_architecture("auto", (1, 1, 40), 3, batch_norm=True)[0]
    assert BatchNorm() not in build_architecture("auto", (1, 28, 28), 3, batch_norm=False)[0]
    assert summary("auto", (1, 7, 7), 10).total_params == auto_by_hand(
        (1, 7, 7), default_filters((1, 7, 7)), batch_norm=False)


def test_parameters_reshape_the_network():
    specs, _ = build_architecture("auto", (1, 28, 28), 10, filters=(4, 8, 8), width=0.5,
                                  hidden_units=(20, 10), dropout=0.3, kernel_size=5)
    assert [s.out_channels for s in specs if isinstance(s, Conv2d)] == [2, 4, 4]
    assert all(s.kernel == (5, 5) and s.padding == "same" for s in specs
               if isinstance(s, Conv2d))
    assert [s.out_features for s in specs if isinstance(s, Linear)] == [10, 5, 10]
    assert sum(isinstance(s, Dropout) for s in specs) == 2
