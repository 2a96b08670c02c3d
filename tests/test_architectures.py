"""Architectures, the adaptation rule, and the seeds' numbers reproduced exactly."""

import pytest

from sklearn_cnn import conv_output_size, list_architectures, summary
from sklearn_cnn.architectures import build_architecture
from sklearn_cnn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU


def test_conv_output_size_formula():
    assert conv_output_size(28, 5, p=2, s=1) == 28  # seed 003, exercise 2
    assert conv_output_size(32, 5, p=2, s=1) == 32  # seed 003's worked example
    assert conv_output_size(5, 3) == 3              # seed 002: 3x3 on 5x5
    assert conv_output_size(7, 3, p=0, s=2) == 3    # floor
    assert conv_output_size(224, 1) == 224          # 1x1 convolution keeps the size


def test_lenet_parameter_counts():
    s28 = summary("lenet", (1, 28, 28), n_classes=10)
    assert s28.total_params == 44_426
    assert [r.params for r in s28.rows if r.params] == [156, 2_416, 30_840, 10_164, 850]
    assert s28.rows[5].output_shape == (16, 4, 4)  # the seed's 16*4*4 flatten
    assert summary("lenet", (1, 32, 32), n_classes=10).total_params == 61_706


def test_simple_matches_the_seed_worked_numbers():
    rows = summary("simple", (3, 32, 32), n_classes=10).rows
    params = [r.params for r in rows if r.params]
    assert params[0] == 224 and params[1] == 1_168 and params[-1] == 1_290


@pytest.mark.parametrize("arch", list_architectures())
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 2, 3), (3, 8, 8), (1, 28, 28),
                                   (4, 33, 17)])
def test_every_architecture_builds_for_any_image_size(arch, shape):
    result = summary(arch, shape, n_classes=3)
    assert result.rows[-1].output_shape == (3,)
    assert result.total_params > 0


def test_small_inputs_are_adapted_and_the_summary_says_so():
    # 8x8 digits: same convolutions, and the first pool is left out so the last map
    # is 4x4 as on 28x28: the head is LeNet's own (44,426 parameters again)
    specs, notes = build_architecture("lenet", (1, 8, 8), n_classes=10)
    assert all(s.padding == "same" for s in specs if isinstance(s, Conv2d))
    assert [type(s).__name__ for s in specs[:5]] == ["Conv2d", "ReLU", "Conv2d", "ReLU",
                                                      "MaxPool2d"]
    assert len(notes) == 2 and "same" in notes[0] and "layer 2 left out" in notes[1]
    assert summary("lenet", (1, 8, 8)).total_params == 44_426
    # 16x16: both pools fit the rule (16 / 4 = 4)
    specs, _ = build_architecture("lenet", (1, 16, 16), n_classes=10)
    assert sum(isinstance(s, MaxPool2d) for s in specs) == 2
    # 1x1: no pool fits
    specs, notes = build_architecture("lenet", (1, 1, 1), n_classes=10)
    assert not any(isinstance(s, MaxPool2d) for s in specs)
    assert len(notes) == 3
    text = str(summary("lenet", (1, 1, 1)))
    assert "smaller than its window" in text and "Total params" in text
    # native size and larger: exactly the published network
    specs, notes = build_architecture("lenet", (1, 28, 28), n_classes=10)
    assert notes == [] and all(s.padding == 0 for s in specs if isinstance(s, Conv2d))


def test_summary_table_lists_every_layer():
    text = str(summary("lenet", (28, 28)))
    assert text.count("\n") > 12
    for word in ("Conv2d 6@5x5", "MaxPool2d 2x2", "Linear 120", "44,426"):
        assert word in text


def test_spec_list_is_used_as_given():
    specs = [Conv2d(4, 3), ReLU(), Flatten(), Linear(2)]
    assert summary(specs, (1, 5, 5), n_classes=2).total_params == 40 + 4 * 9 * 2 + 2


def test_unknown_arch_and_bad_specs_are_clear_errors():
    with pytest.raises(ValueError, match=r"Unknown arch 'lenet6'.*lenet"):
        summary("lenet6", (1, 28, 28))
    with pytest.raises(ValueError, match="does not fit"):
        summary([Conv2d(2, 5), Flatten(), Linear(2)], (1, 3, 3))
    with pytest.raises(ValueError, match="Flatten"):
        summary([Conv2d(2, 3), Linear(2)], (1, 5, 5))
    with pytest.raises(ValueError, match="padding"):
        Conv2d(2, 3, padding="full")


def test_spec_lists_are_checked_against_the_data_with_the_layer_named():
    with pytest.raises(ValueError, match=r"empty list of layers.*Linear\(3\)"):
        build_architecture([], (1, 8, 8), 3)
    with pytest.raises(ValueError, match=r"last layer, Linear\(out_features=2.*layer 3\), "
                                         r"outputs shape \(2,\), but y has 10 classes"):
        build_architecture([Conv2d(2, 3), ReLU(), Flatten(), Linear(2)], (1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"outputs shape \(2, 6, 6\)"):
        build_architecture([Conv2d(2, 3)], (1, 8, 8), 2)
    with pytest.raises(ValueError, match=r"arch layer 2, Conv2d.*does not fit its input of "
                                         r"shape \(72,\)"):
        build_architecture([Conv2d(2, 3), Flatten(), Conv2d(2, 3), Linear(2)], (1, 8, 8), 2)


def test_numpy_numbers_make_the_same_specs_as_python_numbers():
    np = pytest.importorskip("numpy")
    assert Conv2d(np.int64(4), np.int32(3), stride=(np.int64(1), 1)) == Conv2d(4, 3, (1, 1))
    spec = Conv2d(np.int64(4), np.array([3, 3]))
    assert type(spec.out_channels) is int and spec.kernel_size == (3, 3)
    assert MaxPool2d(np.uint8(2)).kernel == (2, 2)
    assert Conv2d(np.array(4), np.array(3)) == Conv2d(4, 3)  # 0-d arrays
    plain = build_architecture("lenet", (1, 28, 28), 10, filters=(6, 16), kernel_size=5,
                               dropout=0.5, width=1.0)
    grid = build_architecture("lenet", (1, 28, 28), np.int64(10), filters=np.array([6, 16]),
                              kernel_size=np.int64(5), dropout=np.float32(0.5),
                              width=np.float64(1.0))
    assert grid == plain
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        Conv2d(4, np.float64(2.5))
