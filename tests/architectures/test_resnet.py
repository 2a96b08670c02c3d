"""ResNets (architectures/resnet.py): BasicBlocks, projection shortcuts, the papers' counts."""

import pytest

from sklearn_cnn import summary
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.layers import BatchNorm, Conv2d, MaxPool2d, Residual, sequence_shapes

BLOCKS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet20": [3, 3, 3]}
WIDTHS = {"resnet18": [64, 128, 256, 512], "resnet34": [64, 128, 256, 512],
          "resnet20": [16, 32, 64]}


def resnet_by_hand(arch, channels, n_classes, imagenet=False):
    """Parameters counted the textbook way: k * k * c_in * c_out a convolution (none
    has a bias: BatchNorm follows), 2 * c a BatchNorm's scale and shift. The stem is
    one 3x3 convolution (7x7 in the ImageNet form); a BasicBlock two 3x3 convolutions
    and, where the block changes the width, a 1x1 projection; then a dense layer on
    the globally pooled channels."""
    first = WIDTHS[arch][0]
    total = (7 * 7 if imagenet else 3 * 3) * channels * first + 2 * first
    c_in = first
    for count, c_out in zip(BLOCKS[arch], WIDTHS[arch], strict=True):
        for _ in range(count):
            total += 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out
            if c_in != c_out:
                total += c_in * c_out + 2 * c_out
            c_in = c_out
    return total + (c_in + 1) * n_classes


def test_resnet_blocks_and_projection_shortcuts():
    specs, _ = build_architecture("resnet18", (3, 32, 32), n_classes=10)
    blocks = [s for s in specs if type(s).__name__ == "Residual"]
    assert len(blocks) == 8
    projections = [b for b in blocks if b.shortcut]
    assert len(projections) == 3  # where 64->128, 128->256, 256->512 halve the map
    assert all(isinstance(b.shortcut[-1], BatchNorm) for b in projections)
    assert len([s for s in build_architecture("resnet34", (3, 32, 32), 10)[0]
                if type(s).__name__ == "Residual"]) == 16
    # He et al.'s CIFAR-10 ResNet-20: 0.27M parameters
    assert summary("resnet20", (3, 32, 32), n_classes=10).total_params == \
        resnet_by_hand("resnet20", 3, 10) == 272_474


@pytest.mark.parametrize("arch", sorted(BLOCKS))
def test_parameter_counts(arch):
    for shape in [(3, 32, 32), (1, 28, 28), (3, 8, 8)]:  # adapted or not: the same weights
        assert summary(arch, shape, 10).total_params == resnet_by_hand(arch, shape[0], 10)


@pytest.mark.parametrize("arch", sorted(BLOCKS))
def test_shortcuts_match_the_body_shape_at_every_block(arch):
    """Identity shortcuts where the block keeps the shape; a strided 1x1 projection
    exactly where a stage halves the map and widens it, so body and shortcut add up."""
    specs, _ = build_architecture(arch, (3, 32, 32), 10)
    shapes = sequence_shapes(specs, (3, 32, 32))
    seen = []
    for spec, in_shape in zip(specs, shapes, strict=False):
        if not isinstance(spec, Residual):
            continue
        body = sequence_shapes(spec.body, in_shape)[-1]
        out = body if not spec.shortcut else sequence_shapes(spec.shortcut, in_shape)[-1]
        assert body == out == spec.output_shape(in_shape)
        assert bool(spec.shortcut) == (body != in_shape)
        if spec.shortcut:
            assert spec.shortcut[0] == Conv2d(body[0], 1, stride=2, bias=False)
            seen.append(body)
    side = 32
    assert seen == [(width, side >> (stage + 1), side >> (stage + 1))
                    for stage, width in enumerate(WIDTHS[arch][1:])]


def test_parameters_reshape_the_network():
    half = summary("resnet20", (3, 32, 32), width=0.5)
    assert half.rows[0].output_shape == (8, 32, 32)
    plain, _ = build_architecture("resnet20", (3, 32, 32), 10, batch_norm=False)
    assert not any(isinstance(s, BatchNorm) for block in plain if isinstance(block, Residual)
                   for s in (*block.body, *block.shortcut))
    dropped, _ = build_architecture("resnet20", (3, 32, 32), 10, dropout=0.2)
    assert type(dropped[-2]).__name__ == "Dropout"


@pytest.mark.parametrize("arch, published", [("resnet18", 11_689_512),
                                             ("resnet34", 21_797_672)])
def test_imagenet_form_is_torchvisions(arch, published):
    """A 7x7 stride-2 stem and a padded 3x3 stride-2 max pool take 224 px to 56; the
    counts are the ones torchvision gives for its resnet18 and resnet34."""
    specs, notes = build_architecture(arch, (3, 224, 224), 1000, imagenet=True)
    assert notes == [] and specs[3] == MaxPool2d(3, 2, padding=1)
    assert sequence_shapes(specs, (3, 224, 224))[4] == (64, 56, 56)
    assert summary(arch, (3, 224, 224), 1000, imagenet=True).total_params == \
        resnet_by_hand(arch, 3, 1000, imagenet=True) == published
