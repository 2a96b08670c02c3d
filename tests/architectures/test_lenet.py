"""LeNet-5 (architectures/lenet.py): the teaching texts' layer shapes and parameter counts."""

import pytest

from sklearn_cnn import summary
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.layers import AvgPool2d, BatchNorm, Conv2d, Dropout, MaxPool2d, Tanh


def lenet_by_hand(side, channels=1, n_classes=10, filters=(6, 16), kernel=5,
                  hidden=(120, 84)):
    """Parameters of conv -> pool 2 -> conv -> pool 2 -> dense layers, counted the
    textbook way: a convolution has (k * k * c_in + 1) * c_out (a bias per filter), a
    valid k x k convolution takes n to n - k + 1 and a 2x2 pool halves (floor); a
    dense layer has (inputs + 1) * outputs."""
    total, c_in = 0, channels
    for c_out in filters:
        total += (kernel * kernel * c_in + 1) * c_out
        side, c_in = (side - kernel + 1) // 2, c_out
    units = c_in * side * side
    for width in (*hidden, n_classes):
        total += (units + 1) * width
        units = width
    return total


def test_lenet_parameter_counts():
    s28 = summary("lenet", (1, 28, 28), n_classes=10)
    assert s28.total_params == lenet_by_hand(28) == 44_426
    # layer by layer: (5*5*1 + 1)*6, (5*5*6 + 1)*16, (16*4*4 + 1)*120, (120 + 1)*84, ...
    assert [r.params for r in s28.rows if r.params] == [156, 2_416, 30_840, 10_164, 850]
    assert s28.rows[5].output_shape == (16, 4, 4)  # the seed's 16*4*4 flatten
    # the 1998 paper's 32x32 input: 16*5*5 features reach the first dense layer
    s32 = summary("lenet", (1, 32, 32), n_classes=10)
    assert s32.total_params == lenet_by_hand(32) == 61_706
    assert s32.rows[5].output_shape == (16, 5, 5)


@pytest.mark.parametrize("params", [dict(filters=(16, 32)), dict(kernel=3),
                                    dict(hidden=(50,)), dict(n_classes=3),
                                    dict(channels=3, side=32)], ids=str)
def test_parameters_count_as_the_textbook_says(params):
    side, channels = params.pop("side", 28), params.pop("channels", 1)
    arch = {"filters": params.get("filters", (6, 16)), "kernel_size": params.get("kernel", 5),
            "hidden_units": params.get("hidden", (120, 84))}
    n_classes = params.get("n_classes", 10)
    assert summary("lenet", (channels, side, side), n_classes, **arch).total_params == \
        lenet_by_hand(side, channels, n_classes, arch["filters"], arch["kernel_size"],
                      arch["hidden_units"])


def test_summary_table_lists_every_layer():
    text = str(summary("lenet", (28, 28)))
    assert text.count("\n") > 12
    for word in ("Conv2d 6@5x5", "MaxPool2d 2x2", "Linear 120", "44,426"):
        assert word in text


def test_parameters_reshape_the_network():
    base = summary("lenet", (1, 28, 28), n_classes=10)
    wide = summary("lenet", (1, 28, 28), n_classes=10, filters=(16, 32))
    assert wide.rows[0].output_shape == (16, 24, 24) and wide.total_params > base.total_params
    specs, _ = build_architecture("lenet", (1, 28, 28), 10, activation="tanh", pooling="avg",
                                  batch_norm=True, dropout=0.25, hidden_units=(50,),
                                  kernel_size=3)
    names = [type(s).__name__ for s in specs]
    assert names.count("Tanh") == 3 and names.count("AvgPool2d") == 2
    assert names.count("BatchNorm") == 2 and names.count("Dropout") == 1
    assert specs[0] == Conv2d(6, 3, bias=False)  # no bias before BatchNorm


def test_the_1998_original_is_tanh_and_average_subsampling():
    specs, _ = build_architecture("lenet", (1, 32, 32), 10, activation="tanh", pooling="avg")
    assert [type(s) for s in specs if isinstance(s, (Tanh, AvgPool2d, MaxPool2d))] == \
        [Tanh, AvgPool2d, Tanh, AvgPool2d, Tanh, Tanh]
    assert not any(isinstance(s, (BatchNorm, Dropout)) for s in specs)
    # the same parameters as the ReLU form: activations and pools have none
    assert summary("lenet", (1, 32, 32), activation="tanh", pooling="avg").total_params \
        == 61_706


def test_width_scales_every_layer_but_the_output():
    half = build_architecture("lenet", (1, 28, 28), 10, width=0.5)[0]
    assert [s.out_channels for s in half if isinstance(s, Conv2d)] == [3, 8]
    assert [s.out_features for s in half if hasattr(s, "out_features")] == [60, 42, 10]
    assert summary("lenet", (1, 28, 28), width=0.5).total_params == lenet_by_hand(
        28, filters=(3, 8), hidden=(60, 42))
