"""The tutorials' two-convolution network (architectures/simple.py): the seed's numbers."""

from sklearn_cnn import summary
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.layers import Conv2d, MaxPool2d


def simple_by_hand(shape, n_classes=10, filters=(8, 16), kernel=3, hidden=128):
    """Per layer, counted the textbook way: (k * k * c_in + 1) * c_out for a
    convolution ("same" padding keeps the size, each 2x2 pool halves it), then
    (inputs + 1) * outputs for each dense layer."""
    counts, (c_in, h, w) = [], shape
    for c_out in filters:
        counts.append((kernel * kernel * c_in + 1) * c_out)
        c_in, h, w = c_out, h // 2, w // 2
    return [*counts, (c_in * h * w + 1) * hidden, (hidden + 1) * n_classes]


def test_simple_matches_the_seed_worked_numbers():
    rows = summary("simple", (3, 32, 32), n_classes=10).rows
    params = [r.params for r in rows if r.params]
    assert params[0] == 224 and params[1] == 1_168 and params[-1] == 1_290
    # 8 filters of 3x3x3 plus biases, 16 of 3x3x8, a dense 128 on 16x8x8, 10 outputs
    assert params == simple_by_hand((3, 32, 32)) == [224, 1_168, 131_200, 1_290]
    assert rows[5].output_shape == (16, 8, 8)


def test_other_images_and_parameters_count_as_the_textbook_says():
    # (images of at least its native 32x32: smaller ones are adapted, see test_registry)
    for shape, params in [((1, 32, 40), {}), ((3, 64, 48), {}),
                          ((3, 32, 32), {"filters": (4, 8, 16), "hidden_units": (32,)})]:
        table = summary("simple", shape, 5, **params)
        by_hand = simple_by_hand(shape, 5, params.get("filters", (8, 16)),
                                 hidden=params.get("hidden_units", (128,))[0])
        assert [r.params for r in table.rows if r.params] == by_hand, shape


def test_convolutions_keep_the_size_and_pools_halve_it():
    specs, notes = build_architecture("simple", (3, 32, 32), 10)
    assert notes == []
    assert [s for s in specs if isinstance(s, Conv2d)] == [Conv2d(8, 3, padding="same"),
                                                          Conv2d(16, 3, padding="same")]
    assert sum(isinstance(s, MaxPool2d) for s in specs) == 2
    assert [r.output_shape for r in summary("simple", (3, 32, 32)).rows[:6]] == [
        (8, 32, 32), (8, 32, 32), (8, 16, 16), (16, 16, 16), (16, 16, 16), (16, 8, 8)]
