"""Every example and the command line run end to end (with few epochs)."""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from images import write_image_folder

from sklearn_cnn.cli import main

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(path), "--epochs", "2"])
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "accuracy" in out or "R^2" in out  # a classifier's or a regressor's score


def test_demo_command_prints_progress_accuracy_and_time(capsys):
    assert main(["demo", "--epochs", "3", "--arch", "simple"]) == 0
    out = capsys.readouterr().out
    assert "epoch" in out and "held-out accuracy" in out and "wall time" in out
    assert out.count("\n    3  ") == 1  # the third epoch's line


def test_module_entry_point_rejects_unknown_backend():
    result = subprocess.run([sys.executable, "-m", "sklearn_cnn", "demo", "--backend", "jax"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr


@pytest.fixture
def image_folder(tmp_path):
    pytest.importorskip("PIL.Image")

    def horizontal(pixels):
        pixels[4:6, :] = 255

    def vertical(pixels):
        pixels[:, 4:6] = 255

    return write_image_folder(tmp_path, {"horizontal": horizontal, "vertical": vertical},
                              n_per_class=12, side=10, noise=40)


def test_fit_a_folder_then_predict_files(image_folder, tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert main(["fit", str(image_folder), "--out", str(model), "--epochs", "8",
                 "--size", "8x8"]) == 0
    out = capsys.readouterr().out
    assert "24 images of (1, 8, 8)" in out and "horizontal, vertical" in out
    assert "    8  " in out and f"saved {model}" in out  # the epoch table and the file
    files = [str(image_folder / "vertical" / "0.png"), str(image_folder / "horizontal" / "1.png")]
    assert main(["predict", str(model), *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["file", "label", "probability"] and len(lines) == 3
    assert lines[1].split()[1] == "vertical" and lines[2].split()[1] == "horizontal"
    assert main(["predict", str(model), *files, "--proba", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "file,label,probability,p(horizontal),p(vertical)"
    values = rows[1].split(",")
    assert abs(float(values[3]) + float(values[4]) - 1) < 1e-3


def test_summary_command(capsys):
    assert main(["summary", "lenet", "--input-shape", "1x28x28"]) == 0
    assert "Total params: 44,426" in capsys.readouterr().out


def test_errors_are_one_line_on_stderr_without_a_traceback(image_folder, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert main(["fit", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.npz")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("sklearn-cnn fit: error:") and "is not a folder" in error
    assert error.count("\n") == 1
    model = tmp_path / "m.npz"
    assert main(["fit", str(image_folder), "--out", str(model), "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(tmp_path / "broken.png")]) == 1
    error = capsys.readouterr().err
    assert "broken.png" in error and "cannot be read" in error and error.count("\n") == 1
    result = subprocess.run([sys.executable, "-m", "sklearn_cnn", "summary", "lenet6"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("sklearn-cnn summary: error: Unknown arch 'lenet6'")
    version = subprocess.run([sys.executable, "-m", "sklearn_cnn", "--version"],
                             capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("sklearn-cnn 0.")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_states_what_it_needs(path, monkeypatch):
    """Its docstring names the install it needs; one that draws, run without
    matplotlib, stops with the sentence that says how to get it."""
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert "pip install" in doc
    if "matplotlib" not in path.read_text():
        return
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.setattr(sys, "argv", [str(path), "--epochs", "1"])
    with pytest.raises(SystemExit, match=r"pip install 'sklearn-cnn\[plot\]'"):
        runpy.run_path(str(path), run_name="__main__")
