"""A newcomer's path through the README: every shell command it prints runs, as
printed, in this checkout (CI runs the suite on a fresh clone), except ``python3
tasks.py test``, which is the command running this test. The placeholders the README
names as the reader's own (``path/to/images``, ``photo1.png``, ``photo2.jpg``) are
replaced by a small folder of images and two photos written here. A ``demo`` command
runs 2 epochs instead of its default 50: that it runs is this test's business; the
accuracy of the full defaults is measured by benchmarks/digits_accuracy.py."""

import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from images import write_image_folder

ROOT = Path(__file__).parents[1]
SELF = "python3 tasks.py test"


def readme_commands(text: str | None = None) -> list[str]:
    """The lines of the ``bash`` blocks of ``text`` (the README's by default), comments
    dropped."""
    text = (ROOT / "README.md").read_text() if text is None else text
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


FENCE = "```"
SAMPLE = f"""Intro with `python3 inline code`.

{FENCE}bash
python3 tasks.py demo  # the quick start
# a comment line

  python3 -m sklearn_cnn fit path/to/images --out model.npz
{FENCE}

{FENCE}python
print("a snippet, not a command")
{FENCE}
{FENCE}bash
python3 tasks.py test
{FENCE}
"""


def test_commands_are_the_lines_of_bash_blocks_without_comments():
    assert readme_commands(SAMPLE) == ["python3 tasks.py demo",
                                       "python3 -m sklearn_cnn fit path/to/images --out "
                                       "model.npz", SELF]
    assert [c for c in readme_commands() if c != SELF]  # the README's: some to run


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
    if "demo" in words and "--epochs" not in words:
        words += ["--epochs", "2"]
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
    assert result.failed == 0 and result.attempted > 0
