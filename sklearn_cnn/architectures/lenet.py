"""LeNet-5 (LeCun et al., 1998), in the form the seed trains on MNIST.

conv 6@5x5 -> ReLU -> max-pool 2 -> conv 16@5x5 -> ReLU -> max-pool 2 -> flatten
-> dense 120 -> ReLU -> dense 84 -> ReLU -> dense n_classes.
On 28x28 that is 44,426 parameters for 10 classes; on 32x32, 61,706.
``activation="tanh", pooling="avg"`` gives the 1998 original's nonlinearity and
subsampling.
"""

from ..layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from ._registry import register_architecture

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}
POOLS = {"max": MaxPool2d, "avg": AvgPool2d}


@register_architecture("lenet", native_size=28)
def lenet(n_classes: int, *, filters=(6, 16), kernel_size=5, hidden_units=(120, 84),
          activation="relu", pooling="max"):
    act, pool = ACTIVATIONS[activation], POOLS[pooling]
    features = []
    for width in filters:
        features += [Conv2d(width, kernel_size), act(), pool(2)]
    head = []
    for width in hidden_units:
        head += [Linear(width), act()]
    return (*features, Flatten(), *head, Linear(n_classes))
