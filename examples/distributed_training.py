"""Train one network on several processes with torchrun
=======================================================

The same script trains in one process with ``python`` and data-parallel on N
processes with PyTorch's launcher::

    pip install 'sklearn-cnn[torch]'
    python examples/distributed_training.py                            # one process
    torchrun --nproc_per_node=2 examples/distributed_training.py      # two processes

Under ``torchrun`` every process takes its share of each batch the estimator draws,
``DistributedDataParallel`` averages the gradients and BatchNorm's statistics span
the whole batch, so (without dropout and augmentation, in float64) the weights are
those of one process training on the whole batches, up to rounding. Only the first
process prints. To check that, the first process then trains the same estimator
again alone (``sklearn_cnn.distributed.single_process``) and prints the largest
weight difference. On several GPUs (``device="cuda"``) each process takes the GPU of
its ``LOCAL_RANK``; on several machines, start ``torchrun --nnodes=M
--node_rank=I --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT`` on each.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier, distributed
from sklearn_cnn.datasets import load_digits_images


def main(epochs: int = 3, device: str = "cpu") -> float:
    """Fit the default network data-parallel (or alone), then compare with one process.

    Parameters
    ----------
    epochs : int, default=3
    device : str, default="cpu"

    Returns
    -------
    float
        The largest difference between a weight of the fitted network and the
        same weight trained in one process (0.0 when this already is one process).
    """
    X, y = load_digits_images(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float64), y, test_size=0.25, stratify=y, random_state=0)
    clf = CNNClassifier(backend="torch", device=device, augment=None, max_iter=epochs,
                        batch_size=64, random_state=0)
    clf.fit(X_train, y_train)  # on every process torchrun started

    world_size = distributed.world()[1]
    if not distributed.is_main_process():
        return 0.0
    print(f"trained on {world_size} process(es): test accuracy "
          f"{clf.score(X_test, y_test):.4f}")
    with distributed.single_process():  # the same fit, in this process alone
        alone = clone(clf).fit(X_train, y_train)
    ours, theirs = clf.get_weights(), alone.get_weights()
    difference = max(float(np.abs(ours[key] - theirs[key]).max()) for key in ours)
    print(f"max weight difference to one process: {difference:.3g}")
    return difference


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    main(args.epochs, args.device)
