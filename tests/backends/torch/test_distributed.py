"""Data-parallel training (backends/torch/distributed.py): under torchrun on two CPU
processes, the weights equal one process's; in one process nothing changes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn_cnn.backends.torch.distributed import (  # noqa: E402
    SyncedBatchNorm1d,
    SyncedBatchNorm2d,
    data_parallel,
)

ROOT = Path(__file__).parents[3]
EXAMPLE = ROOT / "examples" / "distributed_training.py"

#: a second script: sample weights, SGD, LeNet (no BatchNorm), an uneven last batch
WEIGHTED = """
import numpy as np
from sklearn.base import clone
from sklearn_cnn import CNNClassifier, distributed
from sklearn_cnn.datasets import load_digits_images

X, y = load_digits_images(return_X_y=True)
X, y = X[:301].astype(np.float64), y[:301]
weights = np.random.default_rng(0).integers(0, 4, len(y)).astype(float)
clf = CNNClassifier("lenet", backend="torch", augment=None, solver="sgd", max_iter=2,
                    batch_size=32, alpha=0.01, random_state=1, verbose=1)
clf.fit(X, y, sample_weight=weights)
if distributed.is_main_process():
    with distributed.single_process():
        alone = clone(clf).set_params(verbose=0).fit(X, y, sample_weight=weights)
    a, b = clf.get_weights(), alone.get_weights()
    print("processes' losses:", *clf.loss_curve_)
    print("one process's losses:", *alone.loss_curve_)
    print(f"max weight difference to one process: {max(np.abs(a[k] - b[k]).max() for k in a):.3g}")
"""


def torchrun(script: Path, *args: str) -> str:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", str(script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def last_difference(out: str) -> float:
    last = out.strip().splitlines()[-1]
    assert last.startswith("max weight difference to one process: "), out
    return float(last.rpartition(": ")[2])


def test_the_example_under_torchrun_matches_one_process():
    out = torchrun(EXAMPLE, "--epochs", "3")
    assert "trained on 2 process(es)" in out  # printed once: by the first process only
    assert out.count("test accuracy") == 1
    assert last_difference(out) < 1e-8


def test_sample_weights_sgd_and_uneven_batches_match_one_process(tmp_path):
    script = tmp_path / "weighted.py"
    script.write_text(WEIGHTED)
    out = torchrun(script)
    assert last_difference(out) < 1e-8
    assert out.count("epoch  train loss") == 1  # the table, from the first process only
    curves = {line.partition(":")[0]: np.array(line.partition(":")[2].split(), dtype=float)
              for line in out.splitlines() if "losses:" in line}
    np.testing.assert_allclose(curves["processes' losses"], curves["one process's losses"],
                               rtol=1e-10)
    assert len(curves["one process's losses"]) == 2


@pytest.mark.parametrize("kind, shape", [(SyncedBatchNorm2d, (6, 3, 5, 5)),
                                         (SyncedBatchNorm1d, (6, 3))])
def test_in_one_process_it_is_plain_batchnorm(kind, shape):
    plain = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(3)
    synced = kind(3)
    x = torch.randn(*shape)
    torch.testing.assert_close(synced(x), plain(x))
    torch.testing.assert_close(synced.running_var, plain.running_var)
    assert data_parallel(synced, torch.device("cpu")) is None
