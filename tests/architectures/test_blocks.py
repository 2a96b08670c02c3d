"""What the architecture files share: architectures/_blocks.py."""

import numpy as np
import pytest

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures._blocks import (
    ACTIVATIONS,
    POOLS,
    check_dropout,
    choice,
    conv_block,
    dense_head,
    widths,
)
from sklearn_cnn.layers import BatchNorm, Conv2d, Dropout, Linear, ReLU, Tanh


def test_choice_names_the_options_it_refuses():
    assert choice("activation", "tanh", ACTIVATIONS) is Tanh
    assert choice("pooling", "avg", POOLS)(2).kernel == (2, 2)
    with pytest.raises(ValueError, match=r"activation must be one of \['leaky_relu', 'relu', "
                                         r"'sigmoid', 'tanh'\], got 'swish'"):
        choice("activation", "swish", ACTIVATIONS)


def test_widths_scale_round_and_never_vanish():
    assert widths("filters", (6, 16), None, 1.0) == (6, 16)
    assert widths("filters", (6, 16), None, 0.5) == (3, 8)
    assert widths("filters", (6, 16), None, 1.5) == (9, 24)
    assert widths("filters", (1, 3), None, 0.1) == (1, 1)  # never below one
    assert widths("filters", 8, None, 2) == (16,)  # one int: one layer
    assert widths("hidden_units", (), None, 0.5) == ()  # no hidden layer at all


@pytest.mark.parametrize("values, count, width, message", [
    ((8, 8), 5, 1.0, r"filters needs 5 values \(one per stage\), got \(8, 8\)"),
    ((6, 0), None, 1.0, "positive ints"),
    ((6, 2.5), None, 1.0, "positive ints"),
    ((True, 4), None, 1.0, "positive ints"),
    ((6, 16), None, 0, "width must be a positive number, got 0"),
    ((6, 16), None, "wide", "width must be a positive number"),
])
def test_widths_refuse_what_is_not_a_layer_width(values, count, width, message):
    with pytest.raises(ValueError, match=message):
        widths("filters", values, count, width)


def test_dropout_is_a_probability_below_one():
    assert check_dropout(0) == 0.0 and isinstance(check_dropout(0), float)
    assert check_dropout(0.5) == 0.5
    for bad in (1.0, -0.1, "0.5", None):
        with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
            check_dropout(bad)


def test_conv_block_drops_the_bias_before_batch_norm():
    assert conv_block(8, 3, ReLU, batch_norm=False) == [Conv2d(8, 3), ReLU()]
    assert conv_block(8, 3, ReLU, batch_norm=True) == [Conv2d(8, 3, bias=False), BatchNorm(),
                                                       ReLU()]
    assert conv_block(8, 3, Tanh, True, stride=2, padding="same", bias=True) == [
        Conv2d(8, 3, stride=2, padding="same", bias=True), BatchNorm(), Tanh()]


def test_dense_head_ends_in_the_output_layer():
    assert dense_head((), 3, ReLU, 0.0) == [Linear(3)]
    assert dense_head((16, 8), 3, Tanh, 0.2, batch_norm=True) == [
        Linear(16), BatchNorm(), Tanh(), Dropout(0.2),
        Linear(8), BatchNorm(), Tanh(), Dropout(0.2), Linear(3)]


def test_the_estimator_reports_bad_options_before_training():
    X, y = np.zeros((4, 8, 8)), [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"filters needs 5 values \(one per stage\)"):
        CNNClassifier("alexnet", filters=(8, 8)).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        CNNClassifier(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="positive ints"):
        CNNClassifier(filters=(6, 0)).fit(X, y)
