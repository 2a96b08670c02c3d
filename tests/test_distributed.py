"""Which process prints and writes (distributed.py), without any process group."""

import numpy as np
import pytest

from sklearn_cnn import CNNClassifier, distributed


def test_one_process_without_a_launcher(monkeypatch):
    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.world() == (0, 1) and not distributed.launched()
    assert distributed.is_main_process() and not distributed.in_single_process()


@pytest.mark.filterwarnings("ignore:this process is one of several:UserWarning")
def test_a_launched_process_other_than_the_first_neither_prints_nor_writes(
        monkeypatch, tmp_path, capsys, digits):
    X, _, y, _ = digits
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:60], y[:60])
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.launched() and not distributed.is_main_process()
    clf.save(tmp_path / "model.npz")
    assert not (tmp_path / "model.npz").exists()
    CNNClassifier("lenet", max_iter=1, verbose=1).fit(X[:60], y[:60])
    assert capsys.readouterr().out == ""
    with distributed.single_process():
        assert distributed.is_main_process() and distributed.in_single_process()
        clf.save(tmp_path / "model.npz")
    assert (tmp_path / "model.npz").exists() and not distributed.in_single_process()
    monkeypatch.setenv("RANK", "0")
    assert distributed.is_main_process()


@pytest.mark.parametrize("size", ["1", "x"])
def test_a_world_of_one_or_nonsense_is_no_launch(monkeypatch, size):
    monkeypatch.setenv("WORLD_SIZE", size)
    assert not distributed.launched() and distributed.is_main_process()
    assert np.array_equal(distributed.world(), (0, 1))


def test_the_numpy_backend_under_torchrun_says_it_trains_alone(monkeypatch, digits):
    X, _, y, _ = digits
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.warns(UserWarning, match="backend='numpy' trains in one process"):
        CNNClassifier("lenet", max_iter=1).fit(X[:60], y[:60])
