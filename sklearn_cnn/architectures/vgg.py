"""VGG (Simonyan & Zisserman, 2014): stacks of 3x3 convolutions between 2x2 pools.

Each configuration is a list: a number is a 3x3 "same" convolution with that many
filters, ``"M"`` a 2x2 max pool. Five pools take a 32x32 image to 1x1, so the
classifier head is compact: dense 512 -> dropout -> dense n_classes, instead of the
ImageNet network's two 4096-unit layers. ``batch_norm=True`` gives the ``_bn``
variants; ``filters`` sets the five stage widths (64, 128, 256, 512, 512).

``imagenet=True`` gives torchvision's network: the same features, then an adaptive
average pool to 7x7 and two 4096-unit dense layers (the ``hidden_units`` default),
the module whose pretrained weights ``CNNClassifier(pretrained=True)`` loads.
"""

from ..layers import AdaptiveAvgPool2d, Flatten, LayerSpec
from ._blocks import ACTIVATIONS, POOLS, check_dropout, choice, conv_block, dense_head, widths
from ._registry import register_architecture

CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
}


def make_layers(config: list, filters: tuple[int, ...], activation: type, pool: type,
                batch_norm: bool, bias: bool | None = None) -> list[LayerSpec]:
    """Turn a VGG configuration into specs, stage ``s`` using ``filters[s]``."""
    layers, stage = [], 0
    for item in config:
        if item == "M":
            layers.append(pool(2))
            stage += 1
        else:
            layers += conv_block(filters[stage], 3, activation, batch_norm, padding=1,
                                 bias=bias)
    return layers


def _vgg(config: list):
    def build(n_classes: int, *, filters=(64, 128, 256, 512, 512), hidden_units=None,
              activation="relu", pooling="max", dropout=0.5, batch_norm=False, width=1.0,
              imagenet=False):
        act = choice("activation", activation, ACTIVATIONS)
        pool = choice("pooling", pooling, POOLS)
        # torchvision's vgg*_bn keeps a bias in every convolution before BatchNorm
        features = make_layers(config, widths("filters", filters, 5, width), act, pool,
                               batch_norm, bias=True if imagenet else None)
        if hidden_units is None:
            hidden_units = (4096, 4096) if imagenet else (512,)
        hidden = widths("hidden_units", hidden_units, None, width)
        return (*features, *([AdaptiveAvgPool2d(7)] if imagenet else []), Flatten(),
                *dense_head(hidden, n_classes, act, check_dropout(dropout)))
    return build


vgg11 = register_architecture("vgg11", native_size=32)(_vgg(CONFIGS["vgg11"]))
vgg16 = register_architecture("vgg16", native_size=32)(_vgg(CONFIGS["vgg16"]))
