"""LeNet-5 (LeCun et al., 1998), in the form commonly trained on MNIST.

conv 6@5x5 -> ReLU -> max-pool 2 -> conv 16@5x5 -> ReLU -> max-pool 2 -> flatten
-> dense 120 -> ReLU -> dense 84 -> ReLU -> dense n_classes.
On 28x28 that is 44,426 parameters for 10 classes; on 32x32, 61,706.
``activation="tanh", pooling="avg"`` gives the 1998 original's nonlinearity and
subsampling.
"""

from ..layers import Flatten
from ._blocks import ACTIVATIONS, POOLS, check_dropout, choice, conv_block, dense_head, widths
from ._registry import register_architecture


@register_architecture("lenet", native_size=28)
def lenet(n_classes: int, *, filters=(6, 16), kernel_size=5, hidden_units=(120, 84),
          activation="relu", pooling="max", dropout=0.0, batch_norm=False, width=1.0):
    act, pool = choice("activation", activation, ACTIVATIONS), choice("pooling", pooling, POOLS)
    features = []
    for channels in widths("filters", filters, None, width):
        features += [*conv_block(channels, kernel_size, act, batch_norm), pool(2)]
    hidden = widths("hidden_units", hidden_units, None, width)
    return (*features, Flatten(), *dense_head(hidden, n_classes, act, check_dropout(dropout)))
