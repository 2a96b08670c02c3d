"""AlexNet (architectures/alexnet.py): the small-image form's shapes, torchvision's form."""

from sklearn_cnn import summary
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.layers import AdaptiveAvgPool2d, Conv2d, Dropout, Linear, Tanh


def alexnet_by_hand(side, channels, n_classes, kernels=(5, 5, 3, 3, 3),
                    filters=(64, 192, 384, 256, 256), hidden=(512, 512), imagenet=False):
    """Parameters counted the textbook way: (k * k * c_in + 1) * c_out a convolution,
    (inputs + 1) * outputs a dense layer. Sides: n -> (n + 2p - k) // s + 1, with
    "same" padding p = k // 2 (11x11 stride 4 padding 2 first in the ImageNet form), a
    3x3 stride-2 pool after convolutions 1, 2 and 5, and torchvision's adaptive pool
    to 6x6 in the ImageNet form."""
    total, c_in = 0, channels
    for layer, (k, c_out) in enumerate(zip(kernels, filters, strict=True)):
        total += (k * k * c_in + 1) * c_out
        stride, pad = (4, 2) if imagenet and layer == 0 else (1, k // 2)
        side = (side + 2 * pad - k) // stride + 1
        if layer in (0, 1, 4):
            side = (side - 3) // 2 + 1
        c_in = c_out
    units = c_in * (6 * 6 if imagenet else side * side)
    for width in (*hidden, n_classes):
        total += (units + 1) * width
        units = width
    return total


def test_alexnet_and_its_pooled_shapes():
    alex = summary("alexnet", (3, 32, 32), n_classes=10)
    # 32 -> pool -> 15 -> pool -> 7 -> pool -> 3, as the module's docstring draws it
    assert [r.output_shape for r in alex.rows if r.layer.startswith("MaxPool")] == \
        [(64, 15, 15), (192, 7, 7), (256, 3, 3)]
    assert sum(isinstance(s, Dropout) for s in build_architecture("alexnet", (3, 32, 32),
                                                                   10)[0]) == 2
    assert alex.total_params == alexnet_by_hand(32, 3, 10)
    assert summary("alexnet", (1, 28, 28), n_classes=10).total_params == \
        alexnet_by_hand(28, 1, 10)


def test_dropout_comes_before_each_hidden_dense_layer():
    specs, _ = build_architecture("alexnet", (3, 32, 32), 10)
    head = [type(s).__name__ for s in specs[specs.index(next(
        s for s in specs if type(s).__name__ == "Flatten")):]]
    assert head == ["Flatten", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU",
                    "Linear"]
    specs, _ = build_architecture("alexnet", (3, 32, 32), 10, dropout=0.0)
    assert not any(isinstance(s, Dropout) for s in specs)


def test_parameters_reshape_the_network():
    assert any(isinstance(s, Tanh) for s in build_architecture("alexnet", (1, 28, 28), 3,
                                                               activation="tanh")[0])
    narrow = build_architecture("alexnet", (3, 32, 32), 10, width=0.25, hidden_units=(64,))[0]
    assert [s.out_channels for s in narrow if isinstance(s, Conv2d)] == [16, 48, 96, 64, 64]
    assert [s.out_features for s in narrow if isinstance(s, Linear)] == [16, 10]
    assert summary("alexnet", (3, 32, 32), 10, width=0.25, hidden_units=(64,)).total_params \
        == alexnet_by_hand(32, 3, 10, filters=(16, 48, 96, 64, 64), hidden=(16,))


def test_imagenet_form_is_torchvisions():
    specs, notes = build_architecture("alexnet", (3, 224, 224), 1000, imagenet=True)
    assert notes == []
    assert specs[0] == Conv2d(64, 11, stride=4, padding=2)
    assert AdaptiveAvgPool2d(6) in specs
    table = summary("alexnet", (3, 224, 224), 1000, imagenet=True)
    # 224 -> 55 -> pool 27 -> 27 -> pool 13 -> 13 -> pool 6: torchvision's 256x6x6
    assert [r.output_shape for r in table.rows if r.layer.startswith("MaxPool")] == \
        [(64, 27, 27), (192, 13, 13), (256, 6, 6)]
    # 61,100,840: the count torchvision gives for its alexnet
    assert table.total_params == alexnet_by_hand(224, 3, 1000, kernels=(11, 5, 3, 3, 3),
                                                 hidden=(4096, 4096), imagenet=True) \
        == 61_100_840
