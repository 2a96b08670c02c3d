"""The examples (examples/*.py): each runs end to end (with few epochs) and says what
it needs."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(path), "--epochs", "2"])
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "accuracy" in out or "R^2" in out  # a classifier's or a regressor's score


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
