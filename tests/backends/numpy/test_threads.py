"""The threads over a convolution's column blocks and over prediction's passes."""

import pytest

from sklearn_cnn.backends.numpy import threads


def test_map_blocks_runs_shares_on_threads_and_raises_their_errors():
    import threading

    blocks = [(i, i + 1) for i in range(6)]
    with threads.block_threads(2):
        idents = threads.map_blocks(lambda share: threading.get_ident(), blocks)
        assert threading.get_ident() not in idents

        def fail(share):
            raise ValueError("a worker failed")

        with pytest.raises(ValueError, match="a worker failed"):
            threads.map_blocks(fail, blocks)


def test_map_passes_keeps_order_and_runs_every_pass_on_one_thread():
    """Passes come back in order, on the pool's threads when there are workers and
    passes for them; each pass sees one block thread, in the caller too, so its
    shifted convolutions cut the same blocks whatever the number of workers."""
    import threading

    def work(item):
        return item, threading.get_ident(), threads.block_workers()

    items = list(range(9))
    with threads.block_threads(2):  # a caller inside an epoch's block threads
        for workers, ones in [(1, items), (2, items), (4, [7])]:
            results = threads.map_passes(work, ones, workers)
            assert [item for item, _, _ in results] == ones
            assert {seen for _, _, seen in results} == {1}
            on_caller = {ident for _, ident, _ in results} == {threading.get_ident()}
            assert on_caller == (workers == 1 or len(ones) == 1)
        assert threads.block_workers() == 2  # the caller's own context is left as it was
    assert threads.map_passes(work, [], 2) == []

    def fail(item):
        raise ValueError("a pass failed")

    with pytest.raises(ValueError, match="a pass failed"):
        threads.map_passes(fail, items, 2)


def test_workers_handle_floating_point_errors_as_their_caller_does():
    """NumPy's errstate belongs to a thread: the workers take their caller's, so an
    overflow the caller ignores stays quiet and one it raises on raises."""
    import threading
    import warnings

    import numpy as np

    big = np.full(4, 3e38, dtype=np.float32)

    def overflow(item):
        return threading.get_ident(), big * 10

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore"):
            results = threads.map_passes(overflow, [0, 1, 2], 2)
            with threads.block_threads(2):
                threads.map_blocks(overflow, [(0, 1), (1, 2)])
    assert threading.get_ident() not in {ident for ident, _ in results}
    assert all(np.isinf(values).all() for _, values in results)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        threads.map_passes(overflow, [0, 1], 2)
