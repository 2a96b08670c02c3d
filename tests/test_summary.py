"""Layer tables (summary.py): output shapes and parameter counts from specs alone."""

import pytest

from sklearn_cnn import layers as S
from sklearn_cnn.summary import Summary, SummaryRow, describe, summarize_specs, summary

#: seed 000's LeNet-5 for MNIST, layer by layer: conv 6@5x5, pool, conv 16@5x5, pool,
#: 16*4*4 -> 120 -> 84 -> 10, ReLU after every layer but the last
SEED_LENET = (S.Conv2d(6, 5), S.ReLU(), S.MaxPool2d(2), S.Conv2d(16, 5), S.ReLU(),
              S.MaxPool2d(2), S.Flatten(), S.Linear(120), S.ReLU(), S.Linear(84), S.ReLU(),
              S.Linear(10))


def test_lenet5_has_44426_trainable_parameters():
    table = summarize_specs(SEED_LENET, (1, 28, 28))
    assert table.total_params == 44_426
    # (5*5*1)*6 + 6, (5*5*6)*16 + 16, 256*120 + 120, 120*84 + 84, 84*10 + 10
    assert [row.params for row in table.rows if row.params] == [156, 2416, 30840, 10164, 850]
    assert [row.output_shape for row in table.rows][:7] == [
        (6, 24, 24), (6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 8, 8), (16, 4, 4), (256,)]
    named = summary("lenet", (1, 28, 28))  # the package's LeNet is the seed's
    assert named.rows == table.rows and named.total_params == 44_426


def test_the_table_lines_up_and_ends_with_the_total():
    table = summarize_specs(SEED_LENET, (1, 28, 28), notes=["adapted to 28x28"])
    lines = str(table).splitlines()
    assert lines[0] == "Input: 1x28x28"
    assert lines[2].split() == ["Layer", "Output", "shape", "Param", "#"]
    assert lines[4].split() == ["Conv2d", "6@5x5", "6x24x24", "156"]
    assert lines[11].split()[-1] == "30,840"  # Linear 120: thousands separated
    assert lines[-2:] == ["Total params: 44,426", "Note: adapted to 28x28"]
    table_lines = lines[1:-3]  # rules, header and rows: one width
    assert len({len(line) for line in table_lines}) == 1
    assert set(lines[1]) == {"-"} and lines[1] == lines[3] == lines[-3]
    assert repr(table) == str(table)


def test_residual_blocks_are_rows_with_their_layers_indented():
    specs = (S.Conv2d(4, 3, padding=1), S.BatchNorm(),
             S.Residual((S.Conv2d(4, 3, padding=1, bias=False), S.BatchNorm()),
                        (S.Conv2d(4, 1, bias=False),)),
             S.GlobalAvgPool2d(), S.Linear(2))
    table = summarize_specs(specs, (1, 6, 6))
    layers = [row.layer for row in table.rows]
    assert layers == ["Conv2d 4@3x3 padding=1", "BatchNorm",
                      "Residual (projection shortcut)", "  Conv2d 4@3x3 padding=1 bias=False",
                      "  BatchNorm", "  Conv2d 4@1x1 bias=False", "GlobalAvgPool2d",
                      "Linear 2"]
    # BatchNorm counts its scale and shift, not its running statistics; a block's row
    # counts nothing of its own, so nothing is counted twice
    params = [row.params for row in table.rows]
    assert params == [40, 8, 0, 144, 8, 16, 0, 10] and table.total_params == sum(params)


def test_summary_of_a_named_architecture():
    assert summary("lenet", (28, 28)).input_shape == (1, 28, 28)  # (H, W): one channel
    narrow = summary("lenet", (1, 28, 28), filters=(4, 8), hidden_units=(32, 16))
    assert narrow.total_params < 44_426 and narrow.rows[0].layer == "Conv2d 4@5x5"
    three = summary("lenet", (1, 28, 28), n_classes=3)
    assert three.rows[-1] == SummaryRow("Linear 3", (3,), 84 * 3 + 3)
    assert summary("lenet", (1, 32, 32)).total_params == 61_706
    assert isinstance(summary("resnet20", (3, 32, 32)), Summary)
    with pytest.raises(ValueError, match="Unknown arch 'lenet6'"):
        summary("lenet6", (1, 28, 28))
    with pytest.raises(ValueError, match="filters"):
        summary("lenet", (1, 28, 28), filters=(0, 3))


@pytest.mark.parametrize("spec, text", [
    (S.Conv2d(6, 5), "Conv2d 6@5x5"),
    (S.Conv2d(8, 3, padding="same"), "Conv2d 8@3x3 padding=same"),
    (S.Conv2d(4, (3, 1), stride=2, bias=False), "Conv2d 4@3x1 stride=2 bias=False"),
    (S.MaxPool2d(2), "MaxPool2d 2x2"),
    (S.MaxPool2d(3, stride=2, padding=1), "MaxPool2d 3x3 stride=2 padding=1"),
    (S.AvgPool2d(2), "AvgPool2d 2x2"),
    (S.AdaptiveAvgPool2d((3, 2)), "AdaptiveAvgPool2d to 3x2"),
    (S.Linear(120), "Linear 120"),
    (S.Dropout(0.5), "Dropout p=0.5"),
    (S.LeakyReLU(0.1), "LeakyReLU negative_slope=0.1"),
    (S.ReLU(), "ReLU"),
    (S.Residual((S.ReLU(),)), "Residual (identity shortcut)"),
])
def test_describe_names_a_layer_by_what_sets_it_apart(spec, text):
    assert describe(spec) == text
