"""Data-parallel training: one network on several processes, with ``torchrun``.

The same script that trains a :class:`~sklearn_cnn.CNNClassifier` with
``backend="torch"`` in one process trains it on N processes when launched with
PyTorch's ``torchrun``::

    torchrun --nproc_per_node=2 train.py                  # 2 processes, this machine
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \\
        --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 train.py   # 2 machines x 4 GPUs

Every process draws the same batches (the estimator's loop is seeded alike
everywhere) and trains its share of each: rows ``rank::world_size`` of the batch.
``torch.nn.parallel.DistributedDataParallel`` averages the gradients, BatchNorm
computes its statistics over the whole batch across the processes, and the loss is
scaled so that a step equals one process's step on the whole batch: without dropout
and augmentation, the weights match a single process's with the same
``batch_size`` up to rounding. Every process ends with the same fitted estimator;
only the first (rank 0) prints and writes model files.

The process group is started on the first fit from the variables ``torchrun`` sets
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...), with the ``gloo`` backend on CPUs
and ``nccl`` on GPUs (each process then takes the GPU of its ``LOCAL_RANK``); a
group the script started itself is used as it is. The NumPy backend trains in one
process only.

This module imports no torch: it only looks at a group that torch has started.

Examples
--------
>>> from sklearn_cnn import distributed
>>> distributed.world()                   # not launched by torchrun: one process
(0, 1)
>>> distributed.is_main_process()
True
>>> with distributed.single_process():    # a fit in here ignores the group
...     distributed.world()
(0, 1)
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["in_single_process", "is_main_process", "launched", "single_process", "world"]

_ALONE: contextvars.ContextVar[bool] = contextvars.ContextVar("sklearn_cnn_alone",
                                                              default=False)


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher that
    sets ``WORLD_SIZE``) as one of several."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the started process group that fits train over, or
    ``(0, 1)``: no group, or inside :func:`single_process`."""
    if _ALONE.get():
        return 0, 1
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    """Whether this process is the one that prints and writes files: rank 0 of the
    group (or of ``torchrun``'s ``RANK`` before the group starts), or the only one."""
    if _ALONE.get():
        return True
    rank, size = world()
    if size > 1:
        return rank == 0
    return not launched() or os.environ.get("RANK", "0") == "0"


def in_single_process() -> bool:
    """Whether this runs inside :func:`single_process`."""
    return _ALONE.get()


@contextmanager
def single_process() -> Iterator[None]:
    """Within this block, fits train in this process alone, as without ``torchrun``
    (to compare with a data-parallel fit, or to train a small model on one
    process), and this process prints and writes files."""
    token = _ALONE.set(True)
    try:
        yield
    finally:
        _ALONE.reset(token)
