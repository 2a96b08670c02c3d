"""Data-parallel training steps on the cores of one machine: a batch in shards, one
replica of the network per shard, each on a thread of its own.

A training step is independent image by image except in batch normalization, whose
statistics are the whole batch's. So the batch can be cut into shards, one per
core, and each shard run forward and backward through a *replica* of the network:
the replicas share the weights (the very same arrays) and each keeps its own caches
and gradients. The loss is taken on the whole batch's outputs, and the shards'
gradients add up to the whole batch's. Batch normalization sums its statistics
over the shards (:class:`ShardGroup`), as PyTorch's ``SyncBatchNorm`` does over
processes, so a sharded step computes what one pass over the whole batch would, up
to rounding.

Why it pays: BLAS shares each matrix product out to the cores, but NumPy's copies,
element-wise functions and reductions (im2col and col2im, ReLU, pooling, batch
normalization) run on one core. Sharded, every part of the step runs on every core,
with BLAS held at one thread per shard. Two cores of an AVX-512 Xeon, one step of
128 Fashion-MNIST images in two shards against the whole batch with two-threaded
BLAS (``benchmarks/numpy_profile.py --shards``): the simple net 20.7 against 27.3
ms, the default network 20.6 against 33.2, ResNet20 317 against 416 (its blocks on
two threads). Small shards lose to the hand-overs between threads (LeNet, 64
images a shard: 6.8 against 6.1 ms), hence :data:`SHARD_VALUES`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from threading import Barrier, BrokenBarrierError

import numpy as np

from .layers import BatchNorm
from .network import Network
from .optim import Optimizer

#: values of a shard's widest activation below which a step is not sharded.
#: Measured on 2 cores of an AVX-512 Xeon, one step in two shards against one pass
#: with two-threaded BLAS: the simple net (12,544 values an image) loses at batches
#: of 32 (shards of 200k values: 6.7 against 5.9 ms) and wins at 64 (401k: 11.7
#: against 12.9); LeNet (3,456 an image) loses at 128 (221k: 6.8 against 6.1 ms)
#: and wins at 256 (442k: 11.0 against 13.3 ms).
SHARD_VALUES = 2**18


def shard_count(batch: int, widest_activation: int, workers: int) -> int:
    """How many shards a batch of ``batch`` images is cut into on ``workers``
    threads: as many as have at least :data:`SHARD_VALUES` values of the widest
    activation each, at most ``workers``, at least one, never more than images."""
    return max(min(workers, batch, batch * widest_activation // SHARD_VALUES), 1)


class ShardGroup:
    """What the shards of one step share: the whole batch's size, and sums over
    shards.

    Every shard calls :meth:`sum` the same number of times in the same order (the
    layers run in the same order in every replica); each call waits for all
    shards and returns the same total, added in shard order, to each.
    """

    def __init__(self, count: int, batch: int):
        self.count, self.batch = count, batch       # shards, images in the whole batch
        self.barrier = Barrier(count)
        # two sets of slots, used in turns: a shard writes its next values only
        # after every shard has passed the barrier of this sum, so only after they
        # have all read the other set's values
        self._slots = [[None] * count, [None] * count]
        self._calls = [0] * count

    def sum(self, index: int, values: np.ndarray) -> np.ndarray:
        """The sum of every shard's ``values``, called by shard ``index``."""
        slots = self._slots[self._calls[index] % 2]
        self._calls[index] += 1
        slots[index] = values
        self.barrier.wait()
        return functools.reduce(np.add, slots)

    def member(self, index: int) -> ShardMember:
        return ShardMember(self, index)


class ShardMember:
    """Shard ``index`` of a :class:`ShardGroup`, as a batch normalization layer sees it."""

    def __init__(self, group: ShardGroup, index: int):
        self.group, self.index = group, index

    @property
    def batch(self) -> int:
        return self.group.batch

    def sum(self, values: np.ndarray) -> np.ndarray:
        return self.group.sum(self.index, values)


class Shards:
    """Training steps of ``model`` cut into up to ``workers`` shards.

    ``forward``, ``backward`` and ``update`` stand for the network's own passes and
    its optimizer's step, on the whole batch: after ``backward``, ``model``'s
    gradients are the whole batch's. Use as a context manager: the replicas'
    threads end with it.
    """

    def __init__(self, model: Network, workers: int):
        self.model = model
        self.replicas = [model.replica() for _ in range(workers)]
        self.norms = [[layer for layer in replica.all_layers() if isinstance(layer, BatchNorm)]
                      for replica in self.replicas]
        # the first replica fills the model's own gradient arrays, the others theirs,
        # which the step then adds in
        for mine, first in zip(model.layers(), self.replicas[0].layers(), strict=True):
            first.grads = mine.grads
        positions = {id(layer): i for i, layer in enumerate(model.layers())}
        others = [replica.layers() for replica in self.replicas[1:]]
        # (model's gradient, the same gradient in each other replica) per trained array
        self.gradients = [(layer.grads[name],
                           [layers[positions[id(layer)]].grads[name] for layers in others])
                          for layer, name in model.trained]
        # one thread per replica after the first, which runs in the caller's thread
        self._threads = [ThreadPoolExecutor(1) for _ in range(workers - 1)]
        self._sizes: list[int] = []          # the last forward's shards
        self._group: ShardGroup | None = None

    def __enter__(self) -> Shards:
        return self

    def __exit__(self, *exc_info) -> None:
        for thread in self._threads:
            thread.shutdown()

    def seed_dropout(self, seed: int) -> None:
        """Seed every replica's dropout masks; the first replica's are the unsharded
        network's (``Network.seed_dropout``)."""
        for index, replica in enumerate(self.replicas):
            replica.seed_dropout(seed, stream=index)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The training forward pass of the whole batch, shard by shard."""
        count = shard_count(len(x), self.model.widest_activation, len(self.replicas))
        self._group = group = ShardGroup(count, len(x)) if count > 1 else None
        for index, norms in enumerate(self.norms):
            for norm in norms:
                norm.shard = group.member(index) if group and index < count else None
        parts = np.array_split(x, count)
        self._sizes = [len(part) for part in parts]
        outputs = self._run(group, [partial(replica.forward, part, training=True)
                                    for replica, part in zip(self.replicas, parts, strict=False)])
        return np.concatenate(outputs) if count > 1 else outputs[0]

    def backward(self, dout: np.ndarray) -> None:
        """The backward pass of the last ``forward``; fills ``model``'s gradients."""
        count = len(self._sizes)
        parts = np.split(dout, np.cumsum(self._sizes)[:-1])
        self._run(self._group, [partial(replica.backward, part)
                                for replica, part in zip(self.replicas, parts, strict=False)])
        for total, shares in self.gradients:
            for share in shares[:count - 1]:
                total += share

    def update(self, optimizer: Optimizer, grads: list[np.ndarray]) -> None:
        """``optimizer.update_params(grads)``, its element-wise work cut into one part
        per thread (``Optimizer.parts``)."""
        parts = optimizer.parts(grads, len(self.replicas))
        self._run(None, [partial(part.update_params, part_grads) for part, part_grads in parts])
        optimizer.join(parts)

    def _run(self, group: ShardGroup | None, calls: list[Callable[[], object]]) -> list:
        """Each call on a thread of its own, the first in this thread; their results.
        If one fails, the barrier is broken so that no other waits for it forever,
        and the first failure is raised."""
        def run(call: Callable[[], object]):
            try:
                return call()
            except BaseException:
                if group is not None:
                    group.barrier.abort()
                raise

        futures = [thread.submit(run, call) for thread, call in zip(self._threads, calls[1:],
                                                                      strict=False)]
        errors, results = [], []
        try:
            results.append(run(calls[0]))
        except BaseException as error:  # raised again below
            errors.append(error)
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as error:  # raised again below
                errors.append(error)
        if errors:
            # a shard that only found the barrier broken did not fail first
            first = [e for e in errors if not isinstance(e, BrokenBarrierError)] or errors
            raise first[0]
        return results

