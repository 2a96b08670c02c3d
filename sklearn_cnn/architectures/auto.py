"""The default network, sized to the image: a small VGG-style net with BatchNorm.

One stage per entry of ``filters``: conv 3x3 ("same") -> BatchNorm (on images of
at least 8x8 pixels) -> ReLU -> max-pool 2. By default there are as many stages as
halve the shorter image side to 7 pixels or less (at least 2, at most 4), 16
filters in the first stage of images larger than 16 px (32 on smaller ones, where a
stage costs 16 times less) and twice as many in each next one. Then flatten ->
dense 128 -> ReLU -> dense n_classes.

On 28x28 images that is conv 16 -> pool -> conv 32 -> pool -> dense 128, about
3.6 times LeNet-5's multiply-adds; on the 8x8 digits, conv 32 -> pool -> conv 64 ->
pool -> dense 128.
"""

from ..layers import Flatten, Shape
from ._blocks import ACTIVATIONS, POOLS, check_dropout, choice, conv_block, dense_head, widths
from ._registry import register_architecture


def default_filters(input_shape: Shape) -> tuple[int, ...]:
    """Stage widths for images of ``input_shape`` (C, H, W)."""
    side, stages = min(input_shape[1:]), 0
    while side > 7 or stages < 2:
        side, stages = side // 2, stages + 1
    first = 32 if min(input_shape[1:]) <= 16 else 16
    return tuple(first * 2**i for i in range(min(stages, 4)))


#: images smaller than this on a side (a 1 x F row of flat features, a thumbnail) get
#: no BatchNorm by default: see ``auto``
BATCH_NORM_MIN_SIDE = 8


@register_architecture("auto")
def auto(n_classes: int, *, filters=None, kernel_size=3, hidden_units=(128,),
         activation="relu", pooling="max", dropout=0.0, batch_norm=None, width=1.0,
         input_shape: Shape = (1, 28, 28)):
    """``batch_norm=None``: BatchNorm after every convolution of images at least
    ``BATCH_NORM_MIN_SIDE`` pixels a side. Rows of flat features (1 x F) are more
    table than image, and there BatchNorm's cost shows: its statistics are those of
    the batch, unweighted, so ``sample_weight`` stops meaning repetition (as in any
    framework's BatchNorm)."""
    act, pool = choice("activation", activation, ACTIVATIONS), choice("pooling", pooling, POOLS)
    if batch_norm is None:
        batch_norm = min(input_shape[1:]) >= BATCH_NORM_MIN_SIDE
    stages = default_filters(input_shape) if filters is None else filters
    features = []
    for channels in widths("filters", stages, None, width):
        features += [*conv_block(channels, kernel_size, act, batch_norm, padding="same"),
                     pool(2)]
    hidden = widths("hidden_units", hidden_units, None, width)
    return (*features, Flatten(), *dense_head(hidden, n_classes, act, check_dropout(dropout)))
