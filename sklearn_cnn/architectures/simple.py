"""The seeds' "common CNN architecture": two small convolution stages and one dense layer.

conv 8@3x3 (same) -> ReLU -> max-pool 2 -> conv 16@3x3 (same) -> ReLU -> max-pool 2
-> flatten -> dense 128 -> ReLU -> dense n_classes (softmax in the loss).
On 3x32x32 inputs with 10 classes the convolutions have 224 and 1,168 parameters and
the output layer 1,290, the seed's worked numbers.
"""

from ..layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from ._registry import register_architecture


@register_architecture("simple", native_size=32)
def simple(n_classes: int):
    return (
        Conv2d(8, 3, padding="same"), ReLU(), MaxPool2d(2),
        Conv2d(16, 3, padding="same"), ReLU(), MaxPool2d(2),
        Flatten(), Linear(128), ReLU(), Linear(n_classes),
    )
