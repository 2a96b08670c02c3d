"""ResNet (He et al., 2015): BasicBlocks with identity or projection shortcuts.

A BasicBlock is ``relu(body(x) + shortcut(x))`` with body = conv3x3 -> BN -> ReLU
-> conv3x3 -> BN; the shortcut is the identity, or a 1x1 strided convolution with
BN where the block changes the shape. For 32 px images the stem is one 3x3
convolution (no 7x7/2 convolution and max pool, which would leave an 8x8 map from a
32x32 image), as in the paper's CIFAR-10 networks:

- ``resnet18`` / ``resnet34``: blocks [2, 2, 2, 2] / [3, 4, 6, 3], stages of 64, 128,
  256, 512 filters;
- ``resnet20``: the CIFAR network, blocks [3, 3, 3], stages of 16, 32, 64 filters.

Each stage after the first halves the map (stride 2); global average pooling and one
dense layer end the network.

``imagenet=True`` gives torchvision's ImageNet network instead: a 7x7 stride-2 stem
convolution and a padded 3x3 stride-2 max pool, layer for layer the module whose
pretrained weights ``CNNClassifier(pretrained=True)`` loads.
"""

from ..layers import (
    BatchNorm,
    Conv2d,
    Dropout,
    GlobalAvgPool2d,
    LayerSpec,
    Linear,
    MaxPool2d,
    Residual,
)
from ._blocks import ACTIVATIONS, check_dropout, choice, widths
from ._registry import register_architecture


def conv3x3(out_channels: int, stride: int = 1) -> Conv2d:
    return Conv2d(out_channels, 3, stride=stride, padding=1, bias=False)


def basic_block(in_channels: int, out_channels: int, stride: int, activation: type,
                batch_norm: bool) -> list[LayerSpec]:
    bn = [BatchNorm()] if batch_norm else []
    body = (conv3x3(out_channels, stride), *bn, activation(), conv3x3(out_channels), *bn)
    shortcut = ()
    if stride != 1 or in_channels != out_channels:
        shortcut = (Conv2d(out_channels, 1, stride=stride, bias=False), *bn)
    return [Residual(body, shortcut), activation()]


def _resnet(blocks: list[int], default_filters: tuple[int, ...]):
    def build(n_classes: int, *, filters=default_filters, activation="relu", dropout=0.0,
              batch_norm=True, width=1.0, imagenet=False):
        act = choice("activation", activation, ACTIVATIONS)
        stages = widths("filters", filters, len(blocks), width)
        bn = [BatchNorm()] if batch_norm else []
        if imagenet:  # 224 px: 7x7/2 convolution, then 3x3/2 max pool: 56x56 maps
            layers: list[LayerSpec] = [Conv2d(stages[0], 7, stride=2, padding=3, bias=False),
                                       *bn, act(), MaxPool2d(3, 2, padding=1)]
        else:
            layers = [conv3x3(stages[0]), *bn, act()]
        channels = stages[0]
        for stage, (count, out_channels) in enumerate(zip(blocks, stages, strict=True)):
            for block in range(count):
                stride = 2 if stage > 0 and block == 0 else 1
                layers += basic_block(channels, out_channels, stride, act, batch_norm)
                channels = out_channels
        p = check_dropout(dropout)
        return (*layers, GlobalAvgPool2d(), *([Dropout(p)] if p else []), Linear(n_classes))
    return build


resnet18 = register_architecture("resnet18", native_size=32)(
    _resnet([2, 2, 2, 2], (64, 128, 256, 512)))
resnet34 = register_architecture("resnet34", native_size=32)(
    _resnet([3, 4, 6, 3], (64, 128, 256, 512)))
resnet20 = register_architecture("resnet20", native_size=32)(
    _resnet([3, 3, 3], (16, 32, 64)))
