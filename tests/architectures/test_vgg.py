"""VGG-11 and VGG-16 (architectures/vgg.py): 3x3 stacks, five pools, torchvision's form."""

import pytest

from sklearn_cnn import summary
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.layers import BatchNorm, Conv2d, LeakyReLU, MaxPool2d

#: Simonyan & Zisserman's table 1: convolution widths stage by stage (A = VGG-11,
#: D = VGG-16), a 2x2 max pool after each stage
STAGES = {"vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
          "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]}


def vgg_by_hand(arch, channels, n_classes, hidden, features, batch_norm=False, bias=True):
    """Parameters counted the textbook way: (3 * 3 * c_in + bias) * c_out a
    convolution, 2 * c_out its BatchNorm's scale and shift, (inputs + 1) * outputs a
    dense layer on the ``features`` the last map flattens to."""
    total, c_in = 0, channels
    for stage in STAGES[arch]:
        for c_out in stage:
            total += (9 * c_in + bias) * c_out + (2 * c_out if batch_norm else 0)
            c_in = c_out
    units = features
    for width in (*hidden, n_classes):
        total += (units + 1) * width
        units = width
    return total


@pytest.mark.parametrize("arch", sorted(STAGES))
def test_convolution_stacks_and_counts(arch):
    specs, notes = build_architecture(arch, (3, 32, 32), 10)
    assert notes == []
    convs = [s for s in specs if isinstance(s, Conv2d)]
    assert [s.out_channels for s in convs] == [c for stage in STAGES[arch] for c in stage]
    assert all(s.kernel == (3, 3) and s.padding == 1 for s in convs)
    assert sum(isinstance(s, MaxPool2d) for s in specs) == 5
    # five pools take 32x32 to 1x1: the head is dense 512 on 512 features
    assert summary(arch, (3, 32, 32), 10).total_params == vgg_by_hand(arch, 3, 10, (512,), 512)


def test_vgg16_has_13_convolutions_and_vgg11_ends_on_1x1_maps():
    vgg16 = build_architecture("vgg16", (3, 32, 32), 10)[0]
    assert sum(isinstance(s, Conv2d) for s in vgg16) == 13
    assert summary("vgg11", (3, 32, 32)).rows[-5].output_shape == (512,)  # 1x1 maps left


def test_batch_norm_variants_drop_the_convolution_bias():
    specs, _ = build_architecture("vgg11", (3, 32, 32), 10, batch_norm=True)
    assert sum(isinstance(s, BatchNorm) for s in specs) == 8
    assert all(not s.bias for s in specs if isinstance(s, Conv2d))
    assert summary("vgg11", (3, 32, 32), 10, batch_norm=True).total_params == \
        vgg_by_hand("vgg11", 3, 10, (512,), 512, batch_norm=True, bias=False)


def test_parameters_reshape_the_network():
    leaky = build_architecture("vgg11", (3, 32, 32), 10, activation="leaky_relu")[0]
    assert any(isinstance(s, LeakyReLU) for s in leaky)
    narrow = build_architecture("vgg11", (3, 32, 32), 10, width=0.25)[0]
    assert [s.out_channels for s in narrow if isinstance(s, Conv2d)] == \
        [16, 32, 64, 64, 128, 128, 128, 128]
    assert build_architecture("vgg11", (3, 32, 32), 10, pooling="avg")[0].count(
        MaxPool2d(2)) == 0


@pytest.mark.parametrize("arch, batch_norm, published", [
    ("vgg16", False, 138_357_544), ("vgg11", True, 132_868_840)])
def test_imagenet_form_is_torchvisions(arch, batch_norm, published):
    """torchvision's vgg16 and vgg11_bn (whose convolutions keep their bias before
    BatchNorm): an adaptive pool to 7x7, two dense layers of 4096; the counts are
    torchvision's own."""
    table = summary(arch, (3, 224, 224), 1000, imagenet=True, batch_norm=batch_norm)
    assert table.total_params == vgg_by_hand(arch, 3, 1000, (4096, 4096), 512 * 7 * 7,
                                             batch_norm=batch_norm) == published
