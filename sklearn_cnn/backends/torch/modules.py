"""Layer specs -> ``torch.nn`` modules, one builder per spec type.

The module tree mirrors the spec tuple: an ``nn.Sequential`` whose index ``i`` is
spec ``i``, residual blocks with ``body`` and ``shortcut`` sequences. Its
``state_dict`` keys are therefore exactly the canonical weight keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ... import layers as specs
from ...layers import LayerSpec, Shape
from .._base import prediction_plan
from .distributed import SyncedBatchNorm1d, SyncedBatchNorm2d


class PaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` with explicit (top, bottom, left, right) zero padding.

    ``"same"`` padding with an even kernel or a stride is asymmetric; PyTorch's
    ``padding=`` is symmetric, so the padding is applied here before the
    convolution. Parameters (and state-dict keys) are those of ``nn.Conv2d``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, bias,
                 padding4: tuple[int, int, int, int]):
        top, bottom, left, right = padding4
        symmetric = top == bottom and left == right
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=(top, left) if symmetric else 0, bias=bias)
        self.extra_pad = None if symmetric else (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra_pad is not None:
            x = F.pad(x, self.extra_pad)
        return super().forward(x)


class GlobalAvgPool2d(nn.Module):
    """(N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Residual(nn.Module):
    """``body(x) + shortcut(x)``; an empty shortcut is the identity."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Sequential):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class HalvingMaxPool2d(nn.Module):
    """2x2 max pooling with stride 2, for prediction: the larger of each two columns,
    then of each two rows (as the NumPy backend's ``HalvingMaxPool2d``).

    The values of ``nn.MaxPool2d(2)`` (a maximum is exact; an odd last row or
    column is left out, as its floor mode does) without the indices that torch's
    CPU kernel finds even when no gradient is wanted. LeNet's first pool on 512
    channels-last images took 2.13 ms that way, 0.39 ms this way (2 cores), and
    pooling went from 44 % of LeNet's prediction to a few.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        columns = torch.maximum(x[..., :h, 0:w:2], x[..., :h, 1:w:2])    # (N, C, H, W/2)
        return torch.maximum(columns[..., 0::2, :], columns[..., 1::2, :])  # (N, C, H/2, W/2)


def _halving(layer: nn.Module) -> bool:
    """Whether ``layer`` is a plain 2x2 max-pool with stride 2."""
    return (type(layer) is nn.MaxPool2d and not layer.return_indices
            and not layer.ceil_mode and layer.padding in (0, (0, 0))
            and layer.dilation in (1, (1, 1))
            and {layer.kernel_size, layer.stride} <= {2, (2, 2)})


class SeededDropout(nn.Dropout):
    """``nn.Dropout`` drawing its masks from a generator of its own.

    ``nn.Dropout`` draws from torch's global generator, which every thread of the
    process shares: two fits in two threads would take masks from each other's
    stream. This one is reseeded by the backend at every epoch (``seed``), so a fit
    is reproducible whatever runs beside it, and the global generator is left alone.
    """

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self.generator: torch.Generator | None = None

    def seed(self, seed: int, device: torch.device) -> None:
        self.generator = torch.Generator(device=device).manual_seed(int(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None or self.generator.device != x.device:
            self.seed(0, x.device)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)


def _conv(spec: specs.Conv2d, in_shape: Shape) -> nn.Module:
    return PaddedConv2d(in_shape[0], spec.out_channels, spec.kernel, spec.strides,
                        spec.bias, spec.resolve_padding(in_shape))


def _batchnorm(spec: specs.BatchNorm, in_shape: Shape) -> nn.Module:
    # plain BatchNorm in one process; over several, statistics of the whole batch
    kind = SyncedBatchNorm2d if len(in_shape) == 3 else SyncedBatchNorm1d
    return kind(in_shape[0], eps=spec.eps, momentum=spec.momentum)


#: spec type -> builder(spec, in_shape); a test asserts it covers ``layers.SPEC_TYPES``.
BUILDERS = {
    specs.Conv2d: _conv,
    specs.MaxPool2d: lambda s, shape: nn.MaxPool2d(s.kernel, s.strides, s.padding),
    specs.AvgPool2d: lambda s, shape: nn.AvgPool2d(s.kernel, s.strides, s.padding),
    specs.AdaptiveAvgPool2d: lambda s, shape: nn.AdaptiveAvgPool2d(s.size),
    specs.GlobalAvgPool2d: lambda s, shape: GlobalAvgPool2d(),
    specs.Flatten: lambda s, shape: nn.Flatten(),
    specs.Linear: lambda s, shape: nn.Linear(shape[0], s.out_features, bias=s.bias),
    specs.BatchNorm: _batchnorm,
    specs.Dropout: lambda s, shape: SeededDropout(s.p),
    specs.ReLU: lambda s, shape: nn.ReLU(),
    specs.LeakyReLU: lambda s, shape: nn.LeakyReLU(s.negative_slope),
    specs.Tanh: lambda s, shape: nn.Tanh(),
    specs.Sigmoid: lambda s, shape: nn.Sigmoid(),
    specs.Residual: lambda s, shape: Residual(build_module(s.body, shape),
                                              build_module(s.shortcut, shape)),
}


def forward_to(module: nn.Module, x: torch.Tensor, key: str) -> torch.Tensor:
    """Run x through a module built from specs up to and including the layer ``key``
    (``"3"``, or ``"2.body.1"`` inside a residual block)."""
    node, parts = module, key.split(".")
    while parts:
        index, branch, parts = int(parts[0]), parts[1:2], parts[2:]
        for layer in node[:index]:
            x = layer(x)
        if not branch:
            return node[index](x)
        node = getattr(node[index], branch[0])  # into a residual block's body or shortcut
    return x


def build_module(layer_specs: tuple[LayerSpec, ...], in_shape: Shape) -> nn.Sequential:
    """An ``nn.Sequential`` running ``layer_specs`` on inputs of ``in_shape``."""
    modules, shape = [], tuple(in_shape)
    for spec in layer_specs:
        modules.append(BUILDERS[type(spec)](spec, shape))
        shape = spec.output_shape(shape)
    return nn.Sequential(*modules)


def _kind(layer: nn.Module) -> str:
    """What ``prediction_plan`` needs to know of a module."""
    if isinstance(layer, nn.Conv2d):
        return "conv"
    if isinstance(layer, nn.BatchNorm2d):
        return "norm"
    if isinstance(layer, nn.MaxPool2d):
        return "pool"
    monotone = isinstance(layer, (nn.ReLU, nn.Tanh, nn.Sigmoid)) or (
        isinstance(layer, nn.LeakyReLU) and layer.negative_slope >= 0)
    return "monotone" if monotone else "other"


def rewrites(module: nn.Module) -> bool:
    """Whether :func:`prediction_module` changes anything: a BatchNorm after a
    convolution to fold, an activation to move after its max-pool, or a 2x2
    max-pool to halve."""
    return any(action == "fold" or len(group) > 1
               for node in module.modules() if isinstance(node, nn.Sequential)
               for action, *group in prediction_plan(list(node), _kind)) or any(
        _halving(node) for node in module.modules())


def prediction_module(module: nn.Sequential) -> nn.Sequential:
    """The module of a spec-built network rewritten for prediction as
    ``backends.prediction_plan`` says (the NumPy backend's ``prediction_steps`` do the
    same): each BatchNorm after a convolution folded into the convolution's kernel and
    bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``, from the running statistics),
    each ReLU-like activation moved after the max-pool that follows it, each 2x2
    max-pool computed by halving (:class:`HalvingMaxPool2d`); residual blocks are
    rewritten inside. The folded convolutions are copies; every other layer is
    shared (both in evaluation mode)."""
    rewritten = []
    for action, *group in prediction_plan(list(module), _kind):
        if action == "fold":
            rewritten.append(fuse_conv_bn_eval(*group))
            continue
        for layer in group:
            if isinstance(layer, Residual):
                layer = Residual(prediction_module(layer.body),
                                 prediction_module(layer.shortcut))
            rewritten.append(HalvingMaxPool2d() if _halving(layer) else layer)
    return nn.Sequential(*rewritten)


def load_canonical(module: nn.Module, weights: dict) -> None:
    """Copy canonical NumPy weights into ``module`` (same keys), in its dtype."""
    state = module.state_dict()
    expected = {k for k in state if not k.endswith("num_batches_tracked")}
    if expected != set(weights):
        raise ValueError("Weights do not match the module: missing "
                         f"{sorted(expected - set(weights))}, unexpected "
                         f"{sorted(set(weights) - expected)}")
    with torch.no_grad():
        for key in expected:
            source = torch.as_tensor(weights[key], dtype=state[key].dtype)
            if source.shape != state[key].shape:
                raise ValueError(f"Weight {key}: expected shape {tuple(state[key].shape)}, "
                                 f"got {tuple(source.shape)}")
            state[key].copy_(source)


def export_canonical(module: nn.Module) -> dict:
    """The module's weights as canonical NumPy arrays (copies, on the CPU, in the
    module's own dtype)."""
    return {key: value.detach().cpu().numpy().copy()
            for key, value in module.state_dict().items()
            if not key.endswith("num_batches_tracked")}
