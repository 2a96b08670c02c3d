"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), scaled for 28-64 px images.

Five convolutions and three dense layers with ReLU and dropout, as in the original,
with overlapping 3x3/2 max pooling after convolutions 1, 2 and 5. The ImageNet
network opens with an 11x11 stride-4 convolution on 224 px images; a 28-64 px image
has no pixels to spare, so here the first convolution is 5x5 with stride 1 and
padding 2, the others keep the original 5x5 / 3x3 kernels with "same" padding:

    in 32x32: conv 64@5x5 -> pool -> 15x15 -> conv 192@5x5 -> pool -> 7x7
    -> conv 384@3x3 -> conv 256@3x3 -> conv 256@3x3 -> pool -> 3x3
    -> dense 512 -> dense 512 -> dense n_classes (dropout 0.5 before each dense)

The 4096-unit dense layers of the original become 512 (``hidden_units``); ``width``
scales every convolution and dense width.
"""

from ..layers import Dropout, Flatten, Linear
from ._blocks import ACTIVATIONS, POOLS, check_dropout, choice, conv_block, widths
from ._registry import register_architecture

KERNELS = (5, 5, 3, 3, 3)
POOL_AFTER = (True, True, False, False, True)


@register_architecture("alexnet", native_size=28)
def alexnet(n_classes: int, *, filters=(64, 192, 384, 256, 256), hidden_units=(512, 512),
            activation="relu", pooling="max", dropout=0.5, batch_norm=False, width=1.0):
    act, pool = choice("activation", activation, ACTIVATIONS), choice("pooling", pooling, POOLS)
    p = check_dropout(dropout)
    features = []
    for channels, k, pooled in zip(widths("filters", filters, 5, width), KERNELS, POOL_AFTER,
                                   strict=True):
        features += conv_block(channels, k, act, batch_norm, padding=k // 2)
        if pooled:
            features.append(pool(3, 2))
    head = []
    for units in widths("hidden_units", hidden_units, None, width):
        # the original puts dropout *before* each hidden dense layer
        head += [*([Dropout(p)] if p else []), Linear(units), act()]
    return (*features, Flatten(), *head, Linear(n_classes))
