"""Every example and the command line run end to end (with few epochs)."""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from sklearn_cnn.cli import main

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(path), "--epochs", "2"])
    runpy.run_path(str(path), run_name="__main__")
    assert "accuracy" in capsys.readouterr().out


def test_demo_command_prints_progress_accuracy_and_time(capsys):
    assert main(["demo", "--epochs", "3", "--arch", "simple"]) == 0
    out = capsys.readouterr().out
    assert "epoch" in out and "held-out accuracy" in out and "wall time" in out
    assert out.count("\n    3  ") == 1  # the third epoch's line


def test_module_entry_point_rejects_unknown_backend():
    result = subprocess.run([sys.executable, "-m", "sklearn_cnn", "demo", "--backend", "jax"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr
