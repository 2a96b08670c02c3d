"""The torch backend over several processes: ``torch.distributed`` pieces.

See :mod:`sklearn_cnn.distributed` for what data-parallel training means here. The
pieces:

- :func:`start`: the default process group, from ``torchrun``'s variables;
- :func:`data_parallel`: the model's module wrapped in
  ``DistributedDataParallel``, which averages the gradients during the backward
  pass;
- :class:`SyncedBatchNorm1d` / :class:`SyncedBatchNorm2d`: BatchNorm whose training
  statistics are those of the whole batch across the processes, as
  ``torch.nn.SyncBatchNorm`` computes them (which refuses CPU tensors), written
  with a differentiable sum over the processes so that it runs on CPUs (gloo) and
  GPUs (NCCL) alike; in one process it is plain BatchNorm;
- :func:`all_reduce_sum`: values summed over the processes (an epoch's losses).
"""

from __future__ import annotations

import atexit
import inspect
import os
import weakref

import torch
import torch.distributed as dist
from torch import nn

from ... import distributed as processes


def start(device: str) -> None:
    """Start the default process group when ``torchrun`` launched this process as
    one of several and nobody started it yet: gloo for CPUs, NCCL for GPUs."""
    if (processes.in_single_process() or not processes.launched()
            or not dist.is_available() or dist.is_initialized()):
        return
    cuda = torch.device(device).type == "cuda"
    dist.init_process_group(backend="nccl" if cuda and dist.is_nccl_available() else "gloo")
    # the group this package started is ended before the interpreter tears down:
    # left to the teardown, gloo's threads could abort a process that had finished
    atexit.register(_stop)


def _stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def process_device(device: str) -> str:
    """``device`` for this process: under ``torchrun``, ``"cuda"`` means the GPU of
    the process's ``LOCAL_RANK``."""
    if processes.launched() and device == "cuda" and not processes.in_single_process():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the processes (themselves in one process)."""
    if processes.world()[1] > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values


class _SumOverProcesses(torch.autograd.Function):
    """``all_reduce`` (a sum over the processes) with its gradient: each process's
    part of the sum gets the sum of every process's gradient of it."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


#: each module's DistributedDataParallel wrapper during an epoch, and the parameters
#: it was made for (a wrapper knows only the parameters that trained when it was
#: made); dropped at the epoch's end (:func:`release`), as the wrapper holds the
#: module and would keep it alive
_WRAPPERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: SyncedBatchNorm keeps the running statistics equal everywhere: DDP need not
#: send them before every step (the argument's name since torch 2.12)
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                   inspect.signature(nn.parallel.DistributedDataParallel).parameters
                   else {"broadcast_buffers": False})


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module | None:
    """``module`` in ``DistributedDataParallel``, or None in one process. The wrapper
    shares the module's parameters: training through it trains the module."""
    if processes.world()[1] == 1:
        return None
    trainable = tuple(id(p) for p in module.parameters() if p.requires_grad)
    cached = _WRAPPERS.get(module)
    if cached is None or cached[0] != trainable:
        wrapper = nn.parallel.DistributedDataParallel(
            module, device_ids=None if device.type == "cpu" else [device.index],
            **_NO_BUFFER_SYNC)
        cached = _WRAPPERS[module] = (trainable, wrapper)
    return cached[1]


class _Synced:
    """The forward of a BatchNorm that, while training over several processes,
    normalizes with the whole batch's statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and processes.world()[1] > 1):
            return super().forward(x)
        all_reduce = _SumOverProcesses.apply
        dims = [0, *range(2, x.ndim)]                          # all but the channels
        shape = [1, -1] + [1] * (x.ndim - 2)
        count = torch.full((1,), x.numel() // max(x.shape[1], 1), dtype=x.dtype,
                           device=x.device)
        totals = all_reduce(torch.cat([x.sum(dims), count]))   # (C + 1,) over processes
        n = totals[-1]
        mean = totals[:-1] / n                                  # (C,)
        centered = x - mean.view(shape)
        var = all_reduce((centered * centered).sum(dims)) / n   # biased, as BatchNorm's
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                unbiased = var.detach() * n / (n - 1).clamp(min=1)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        return out


class SyncedBatchNorm1d(_Synced, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training statistics span every process."""


class SyncedBatchNorm2d(_Synced, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics span every process."""


def release(module: nn.Module) -> None:
    """Drop ``module``'s wrapper (the end of an epoch): the next epoch makes its own,
    which also picks up parameters frozen or unfrozen since."""
    _WRAPPERS.pop(module, None)
