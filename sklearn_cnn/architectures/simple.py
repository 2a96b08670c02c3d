"""The classic two-convolution network of CNN tutorials: two small convolution stages
and one dense layer.

conv 8@3x3 (same) -> ReLU -> max-pool 2 -> conv 16@3x3 (same) -> ReLU -> max-pool 2
-> flatten -> dense 128 -> ReLU -> dense n_classes (softmax in the loss).
On 3x32x32 inputs with 10 classes the convolutions have 224 and 1,168 parameters and
the output layer 1,290, the seed's worked numbers.
"""

from ..layers import Flatten
from ._blocks import ACTIVATIONS, POOLS, check_dropout, choice, conv_block, dense_head, widths
from ._registry import register_architecture


@register_architecture("simple", native_size=32)
def simple(n_classes: int, *, filters=(8, 16), kernel_size=3, hidden_units=(128,),
           activation="relu", pooling="max", dropout=0.0, batch_norm=False, width=1.0):
    act, pool = choice("activation", activation, ACTIVATIONS), choice("pooling", pooling, POOLS)
    features = []
    for channels in widths("filters", filters, None, width):
        features += [*conv_block(channels, kernel_size, act, batch_norm, padding="same"),
                     pool(2)]
    hidden = widths("hidden_units", hidden_units, None, width)
    return (*features, Flatten(), *dense_head(hidden, n_classes, act, check_dropout(dropout)))
