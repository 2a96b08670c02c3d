"""The command line (cli.py): fit, predict, summary, demo, and errors as one line."""

import subprocess
import sys

import numpy as np
import pytest
from images import write_image_folder

from sklearn_cnn.cli import _parser, main


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


def test_an_out_path_that_cannot_be_written_fails_before_training(image_folder, tmp_path,
                                                                  capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    for out, message in [(tmp_path / "missing" / "m.npz", "does not exist"),
                         (folder, "is a folder")]:
        assert main(["fit", str(image_folder), "--out", str(out), "--epochs", "1"]) == 1
        captured = capsys.readouterr()
        assert message in captured.err and str(out) in captured.err
        assert "epoch" not in captured.out  # refused before any training
    assert list(folder.iterdir()) == []


def test_predict_prints_a_regressors_values(image_folder, tmp_path, capsys):
    from sklearn_cnn import CNNRegressor
    from sklearn_cnn.datasets import load_image_folder

    images = load_image_folder(image_folder)
    reg = CNNRegressor("lenet", max_iter=1, random_state=0).fit(
        images.data, images.target.astype(float))
    reg.save(tmp_path / "reg.npz")
    files = list(map(str, images.filenames[:3]))
    assert main(["predict", str(tmp_path / "reg.npz"), *files, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "file,value" and len(lines) == 4
    expected = reg.predict(images.data[:3])
    assert [float(line.split(",")[1]) for line in lines[1:]] == pytest.approx(expected,
                                                                               rel=1e-5)


@pytest.mark.parametrize("argv, name", [
    (["summary", "lenet", "--classes", "0"], "--classes"),
    (["fit", "folder", "--out", "m.npz", "--size", "99999999999x99999999999"], "--size"),
    (["fit", "folder", "--out", "m.npz", "--epochs", "0"], "--epochs"),
])
def test_out_of_range_numbers_are_refused_by_their_option(argv, name, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and name in capsys.readouterr().err


def test_mixed_image_sizes_train_at_a_size_chosen_and_reported(tmp_path, capsys):
    from PIL import Image

    for label, side in (("a", 8), ("b", 12)):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.fromarray(np.full((side, side), 60 * i, np.uint8)).save(
                tmp_path / label / f"{i}.png")
    model = tmp_path / "m.npz"
    assert main(["fit", str(tmp_path), "--out", str(model), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 images of (1, 10, 10) (C, H, W)" in out
    assert "image size: 10x10 pixels, chosen from 4 training images of 2 sizes" in out
    from sklearn_cnn import load

    assert load(model).input_shape_ == (1, 10, 10)
    assert main(["predict", str(model), str(tmp_path / "b")]) == 0  # 12x12 files, resized
    assert len(capsys.readouterr().out.strip().splitlines()) == 3  # a header and 2 files
    assert main(["predict", str(tmp_path / "a" / "0.png"), str(tmp_path / "a" / "1.png")]) == 1
    err = capsys.readouterr().err
    assert "it is a PNG image" in err and "pickled" not in err


def test_one_number_is_a_square_size_and_every_argument_has_help(image_folder, tmp_path,
                                                                 capsys):
    out = tmp_path / "m.npz"
    assert main(["fit", str(image_folder), "--out", str(out), "--epochs", "1",
                 "--size", "6"]) == 0
    from sklearn_cnn import load

    assert load(out).input_shape_[1:] == (6, 6)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "``" not in capsys.readouterr().out  # no reStructuredText in the help
    commands = next(action for action in _parser()._actions if action.choices)
    for name, command in commands.choices.items():
        silent = [action.dest for action in command._actions
                  if not action.help and action.dest != "help"]
        assert silent == [], f"{name}: {silent} have no help text"


def test_the_epoch_table_has_a_validation_column_only_with_early_stopping(capsys):
    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    CNNClassifier("lenet", max_iter=1, verbose=1, random_state=0).fit(X[:100], y[:100])
    assert "valid score" not in capsys.readouterr().out
    CNNClassifier("lenet", max_iter=1, verbose=1, early_stopping=True,
                  random_state=0).fit(X[:100], y[:100])
    assert "valid score" in capsys.readouterr().out


def test_predict_a_folder_labels_every_image_in_it_and_one_level_down(image_folder,
                                                                     tmp_path, capsys):
    """A folder stands for its image files and those of its sub-folders (the layout fit
    reads), sorted by path, one line each as for files; deeper, hidden and non-image
    files are left out; a folder without images is a one-line error."""
    from PIL import Image

    model = tmp_path / "model.npz"
    assert main(["fit", str(image_folder), "--out", str(model), "--epochs", "2",
                 "--size", "8x8"]) == 0
    capsys.readouterr()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(image_folder / "loose.png")
    (image_folder / "notes.txt").write_text("not an image")
    (image_folder / ".hidden.png").write_bytes(b"not read")
    (image_folder / "vertical" / "deeper").mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(
        image_folder / "vertical" / "deeper" / "x.png")
    assert main(["predict", str(model), str(image_folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = sorted(str(image_folder / name / f"{i}.png")
                      for name in ("horizontal", "vertical") for i in range(12))
    listed = [line.split()[0] for line in lines[1:]]
    assert lines[0].split() == ["file", "label", "probability"]
    assert listed == [str(image_folder / "loose.png"), *expected]
    # a file and a folder together, and the same labels as the files given one by one
    one = str(image_folder / "vertical" / "0.png")
    assert main(["predict", str(model), one, str(image_folder / "horizontal"),
                 "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [
        one, *sorted(str(image_folder / "horizontal" / f"{i}.png") for i in range(12))]
    assert main(["predict", str(model), *expected]) == 0
    by_file = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert all(by_file[line.split()[0]] == line.split() for line in lines[2:])
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    assert main(["predict", str(model), str(empty)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("sklearn-cnn predict: error:") and error.count("\n") == 1
    assert f"{str(empty)!r} holds no image files" in error
