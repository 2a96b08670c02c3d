"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), scaled for 28-64 px images.

Five convolutions and three dense layers with ReLU and dropout, as in the original,
with overlapping 3x3/2 max pooling after convolutions 1, 2 and 5. The ImageNet
network opens with an 11x11 stride-4 convolution on 224 px images; a 28-64 px image
has no pixels to spare, so here the first convolution is 5x5 with stride 1 and
padding 2, the others keep the original 5x5 / 3x3 kernels with "same" padding::

    in 32x32: conv 64@5x5 -> pool -> 15x15 -> conv 192@5x5 -> pool -> 7x7
    -> conv 384@3x3 -> conv 256@3x3 -> conv 256@3x3 -> pool -> 3x3
    -> dense 512 -> dense 512 -> dense n_classes (dropout 0.5 before each dense)

The 4096-unit dense layers of the original become 512 (``hidden_units``); ``width``
scales every convolution and dense width.

``imagenet=True`` gives torchvision's network: an 11x11 stride-4 first convolution
(padding 2), then 5x5 and 3x3 ones, an adaptive average pool to 6x6 and two
4096-unit dense layers, the module whose pretrained weights
``CNNClassifier(pretrained=True)`` loads.
"""

from ..layers import AdaptiveAvgPool2d, Dropout, Flatten, Linear
from ._blocks import ACTIVATIONS, POOLS, check_dropout, choice, conv_block, widths
from ._registry import register_architecture

KERNELS = (5, 5, 3, 3, 3)
IMAGENET_KERNELS = (11, 5, 3, 3, 3)
POOL_AFTER = (True, True, False, False, True)


@register_architecture("alexnet", native_size=28)
def alexnet(n_classes: int, *, filters=(64, 192, 384, 256, 256), hidden_units=None,
            activation="relu", pooling="max", dropout=0.5, batch_norm=False, width=1.0,
            imagenet=False):
    act, pool = choice("activation", activation, ACTIVATIONS), choice("pooling", pooling, POOLS)
    p = check_dropout(dropout)
    if hidden_units is None:
        hidden_units = (4096, 4096) if imagenet else (512, 512)
    kernels = IMAGENET_KERNELS if imagenet else KERNELS
    features = []
    for layer, (channels, k, pooled) in enumerate(zip(
            widths("filters", filters, 5, width), kernels, POOL_AFTER, strict=True)):
        stride = 4 if imagenet and layer == 0 else 1
        padding = 2 if imagenet and layer == 0 else k // 2
        features += conv_block(channels, k, act, batch_norm, stride=stride, padding=padding)
        if pooled:
            features.append(pool(3, 2))
    if imagenet:
        features.append(AdaptiveAvgPool2d(6))
    head = []
    for units in widths("hidden_units", hidden_units, None, width):
        # the original puts dropout *before* each hidden dense layer
        head += [*([Dropout(p)] if p else []), Linear(units), act()]
    return (*features, Flatten(), *head, Linear(n_classes))
