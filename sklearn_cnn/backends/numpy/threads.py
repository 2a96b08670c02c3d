"""Threads for the NumPy backend's kernels: over a convolution's column blocks, and
over prediction's passes.

The column blocks of a shifted convolution are independent, so they can be shared
out to threads: NumPy's copies and a single-threaded BLAS product release the GIL.
Each thread then multiplies the patches it copied itself, from its own core's
cache, where a two-threaded BLAS product on patches the main thread copied pulls
half of them over from the other core (ResNet20 training steps on 2 cores, the
two kinds interleaved in one process: medians 0.78-0.91 of the plain ones). It
pays only with BLAS itself single-threaded throughout: BLAS's idle threads spin a
while after each product and would take the cores from these threads (limiting
BLAS around each convolution only: 1.05-1.28 of the plain steps). So the backend
turns it on for a whole epoch (:func:`block_threads`), not for one call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

_local = threading.local()
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def block_workers() -> int:
    """Threads that this thread's shifted convolutions share their blocks out to
    (:func:`block_threads`; 1 outside it)."""
    return getattr(_local, "workers", 1)


@contextmanager
def block_threads(workers: int) -> Iterator[None]:
    """Within this block, shifted convolutions called from this thread share their
    column blocks out to ``workers`` threads (the caller keeps BLAS single-threaded
    meanwhile: see the backend's ``_threads_over_blocks``)."""
    previous, _local.workers = block_workers(), max(int(workers), 1)
    try:
        yield
    finally:
        _local.workers = previous


def map_blocks(work: Callable[[list[tuple[int, int]]], object],
               blocks: list[tuple[int, int]]) -> list:
    """``work(share)`` for each worker's share of ``blocks`` (every ``workers``-th
    block), run on that many threads; one share, in this thread, without
    :func:`block_threads`. Returns the results in share order."""
    workers = min(block_workers(), len(blocks))
    if workers <= 1:
        return [work(blocks)]
    return list(_pool(workers).map(_with_callers_errstate(work),
                                   [blocks[i::workers] for i in range(workers)]))


def map_passes(work: Callable[[object], object], items: list, workers: int) -> list:
    """``work(item)`` for each item, on ``workers`` threads; the results in order.

    Prediction's passes are independent, so two cores can each run whole passes
    through the network (NumPy's kernels and a single-threaded BLAS product release
    the GIL) instead of splitting every product in two: LeNet, simple and ResNet20
    predicted 10,000 / 10,000 / 2,500 images in 0.73-0.98 / 0.70-0.71 / 0.58-0.59 of
    the time of serial passes with two-threaded BLAS (medians of 7, in one process).
    Every pass runs on one thread, its shifted convolutions' blocks included, with
    the same blocks whatever ``workers`` is, so an image's scores do not depend on
    how many passes there were (with BLAS held at one thread by the caller:
    OpenBLAS's sums differ with its thread count).
    """
    with block_threads(1):  # the caller's own passes, when it runs them, as a worker's
        if workers <= 1 or len(items) <= 1:
            return [work(item) for item in items]
        return list(_pool(workers).map(_with_callers_errstate(work), items))


def _with_callers_errstate(work: Callable[[object], object]) -> Callable[[object], object]:
    """``work`` under the calling thread's floating-point error handling: NumPy's
    ``errstate`` belongs to a thread, so a worker would warn of an overflow that
    its caller chose to ignore (and report otherwise)."""
    settings = np.geterr()

    def run(item):
        with np.errstate(**settings):
            return work(item)
    return run


def _pool(workers: int) -> ThreadPoolExecutor:
    """One pool of ``workers`` threads per size, made on first use and kept (its
    threads are idle between calls, and have no :func:`block_threads` of their own)."""
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers)
        return _pools[workers]
