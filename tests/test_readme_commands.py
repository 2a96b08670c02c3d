"""A newcomer's path through the README: every shell command it prints runs, as
printed, in this checkout (CI runs the suite on a fresh clone), except ``python3
tasks.py test``, which is the command running this test. The placeholders the README
names as the reader's own (``path/to/images``, ``photo1.png``, ``photo2.jpg``) are
replaced by a small folder of images and two photos written here."""

import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from images import write_image_folder

ROOT = Path(__file__).parents[1]
SELF = "python3 tasks.py test"


def readme_commands() -> list[str]:
    """The lines of the README's ``bash`` blocks, comments dropped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(),
                        flags=re.M | re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_prints_the_newcomers_commands():
    commands = readme_commands()
    assert commands[:2] == ["python3 tasks.py demo", SELF]  # the quick start
    assert "python3 tasks.py demo --backend torch" in commands
    assert any(" -m sklearn_cnn fit path/to/images" in c for c in commands)


@pytest.fixture(scope="module")
def own_files(tmp_path_factory):
    """What the README asks the reader to bring: a folder of images, two photos."""
    Image = pytest.importorskip("PIL.Image")
    folder = tmp_path_factory.mktemp("readme")

    def stripes(pixels):
        pixels[::4] = 255

    def dots(pixels):
        pixels[::6, ::6] = 255

    write_image_folder(folder, {"stripes": stripes, "dots": dots}, n_per_class=10, side=28,
                       noise=60)
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(folder / "photo1.png")
    Image.fromarray((rng.random((40, 30, 3)) * 255).astype(np.uint8)).save(folder / "photo2.jpg")
    return folder


@pytest.mark.parametrize("command", [c for c in readme_commands() if c != SELF])
def test_readme_command_runs_as_printed(command, own_files, tmp_path):
    words = [{"path/to/images": str(own_files / "images"),
              "photo1.png": str(own_files / "photo1.png"),
              "photo2.jpg": str(own_files / "photo2.jpg"),
              "model.npz": str(tmp_path / "model.npz")}.get(word, word)
             for word in shlex.split(command)]
    if "predict" in words:  # predicting needs the model that README's fit writes
        fit = next(c for c in readme_commands() if " fit path/to/images" in c)
        test_readme_command_runs_as_printed(fit, own_files, tmp_path)
    result = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def test_readme_examples_raise_no_warning():
    """Every snippet of the README, run with warnings as errors (deprecations of the
    libraries underneath aside): the defaults are quiet."""
    import doctest
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DeprecationWarning)
        result = doctest.testfile(str(ROOT / "README.md"), module_relative=False,
                                  optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 50
