"""The benchmark suite's measuring code runs for every contender (tiny sizes, random
images); the figures themselves are the suite's business, not the tests'."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("skorch")

SUITE = Path(__file__).parents[1] / "benchmarks" / "suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("benchmark_suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("contender", ["numpy", "torch", "plain_torch", "skorch", "mlp"])
def test_every_contender_is_measured(suite, contender):
    task = dict(contender=contender, arch="lenet", epochs=1, images=256, batch_size=128,
                data="random", test_images=64)
    result = suite.measure(task)
    assert set(result) == {"train_images_per_s", "seconds_per_epoch", "infer_images_per_s",
                           "accuracy", "peak_rss_mb"}
    assert result["train_images_per_s"] > 0 and result["infer_images_per_s"] > 0
    assert 0.0 <= result["accuracy"] <= 1.0 and result["peak_rss_mb"] > 10


def test_report_is_written_as_markdown_and_as_restructuredtext(suite, tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "REPORT", tmp_path / "RESULTS.md")
    monkeypatch.setattr(suite, "REPORT_RST", tmp_path / "RESULTS.rst")
    table = ["**Training** on `x`:", "", "| a | b |", "| --- | ---: |", "| `1` | 2 |"]
    text = suite.write_report([table], args=None)
    assert (tmp_path / "RESULTS.md").read_text() == text
    assert text.startswith("Measured by `python ") and "| `1` | 2 |" in text
    rst = (tmp_path / "RESULTS.rst").read_text()
    assert "**Training** on ``x``:" in rst and ".. csv-table::" in rst
    assert '   :header: "a", "b"' in rst and '   "``1``", "2"' in rst
    assert "| --- |" not in rst  # the alignment row says nothing there
    assert suite.write_report([table], args=None, save=False) == text


def test_image_folder_benchmark_runs_on_random_images():
    script = Path(__file__).parents[1] / "benchmarks" / "image_folder.py"
    pytest.importorskip("PIL")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(script), "--data", "random", "--images", "60",
                          "--epochs", "1"], capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) == 6 and "wrote 60 PNG files" in out  # header, rule, four ways
    assert "`ImageLoader(lazy=True)`" in rows[-1]


def test_streaming_benchmark_runs_on_random_images():
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "streaming.py"
    out = subprocess.run([sys.executable, str(script), "--data", "random", "--images", "1000"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) == 4 and "| 1,000 |" in rows[2] and "| 600 |" in rows[3]
    assert out.strip().splitlines()[-1].startswith(
        "peak memory, memory-mapped 1,000 against 600 in memory: ")


def test_latency_benchmark_runs_on_random_images():
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "latency.py"
    out = subprocess.run([sys.executable, str(script), "--data", "random", "--calls", "3",
                          "--train", "60", "--epochs", "1", "--many", "20"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) == 8 and "onnxruntime" in rows[0] and "MLPClassifier" in rows[0]
    assert rows[2].startswith('| `arch="lenet"` |') and rows[7].startswith("| default net |")


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_fashion_mnist_best_runs_its_recipe_and_ends_with_the_figure(backend):
    import re
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "fashion_mnist_best.py"
    out = subprocess.run([sys.executable, str(script), "--data", "random", "--images", "128",
                          "--epochs", "2", "--backend", backend, "--width", "0.25",
                          "--curve", "1", "--verbose", "0"], capture_output=True, text=True,
                         check=True).stdout
    assert re.fullmatch(r"test accuracy 0\.\d{4} in \d+\.\d min", out.splitlines()[-1])
    row = json.loads(out.splitlines()[-2])
    assert row["train_images"] == 128 and "test_accuracy_without_tta" in row
    # the curve: one point per epoch, in order, scored after training; the last point
    # is the final weights (put back before the figure's own score)
    assert [point["epoch"] for point in row["curve"]] == [1, 2]
    assert row["curve"][0]["fit_minutes"] <= row["curve"][1]["fit_minutes"]
    assert row["curve"][-1]["test_accuracy"] == row["test_accuracy"]


def test_distributed_benchmark_runs_under_torchrun_on_random_images():
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "data_parallel.py"
    out = subprocess.run([sys.executable, str(script), "--data", "random", "--images", "100",
                          "--epochs", "1"], capture_output=True, text=True, check=True).stdout
    assert "| one process |" in out and "| torchrun, 2 processes |" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("max weight difference to one process: ")
    assert float(last.rpartition(": ")[2]) < 1e-8


def test_numpy_profile_reports_every_layer_and_the_product_floor():
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "numpy_profile.py"
    out = subprocess.run([sys.executable, str(script), "--layers", "lenet", "--products",
                          "--data", "random", "--steps", "2"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    # lenet: 12 layers, the total, two header rows; the products: two thread counts
    # and two header rows
    assert len(rows) == 12 + 1 + 2 + 2 + 2
    assert "| 2 HalvingMaxPool2d |" in out.split("| 1 Activation |")[0]  # training order
    assert "23.6 GFLOP" in out


def test_numpy_profile_compares_pooling_in_windows_with_the_rule():
    import subprocess
    import sys

    from sklearn_cnn.backends.numpy.functional import pools_in_windows

    script = Path(__file__).parents[1] / "benchmarks" / "numpy_profile.py"
    out = subprocess.run([sys.executable, str(script), "--windows", "--images", "2",
                          "--steps", "1"], capture_output=True, text=True, check=True).stdout
    rows = [line.split("|")[1:-1] for line in out.splitlines()
            if line.startswith("| ") and "x" in line.split("|")[1]]
    assert len(rows) == 4 * 2 * 6 * 4   # kernels, map sides, channels in, channels out
    slower, ties = 0, 0  # ties: equal once printed to a microsecond, either way
    for kernel, _, c, o, before, after, _, rule in rows:
        k = int(kernel.split("x")[0])
        picks_windows = pools_in_windows(int(c), int(o), (k, k), (1, 1))
        assert rule.strip() == ("windows" if picks_windows else "conv + pool")
        ties += float(after) == float(before)
        slower += float(after) != float(before) and picks_windows != (float(after) < float(before))
    said = int(out.split("slower of the two in ")[1].split(" of ")[0])
    assert slower <= said <= slower + ties
    assert f" of {len(rows)} cases" in out


def test_numpy_profile_times_steps_whole_and_in_shards():
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "numpy_profile.py"
    out = subprocess.run([sys.executable, str(script), "--shards", "lenet", "--data",
                          "random", "--steps", "1"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| lenet")]
    assert [int(row[1]) for row in rows] == [32, 64, 128, 256]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
    # LeNet's widest maps hold 3,456 values: 256 images make three shards' worth of
    # 2**18 values, fewer images none
    expected = [1, 1, 1, min(os.cpu_count() or 1, 3)]
    assert [int(row[5]) for row in rows] == expected
