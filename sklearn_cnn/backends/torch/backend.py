"""The PyTorch backend: the same specs as an ``nn.Module``, trained through skorch.

The skorch net is built once per model, with its real configuration. An epoch runs
through skorch's own loop pieces, ``notify("on_epoch_begin")``,
``run_single_epoch(batches, step_fn=train_step)`` and ``notify("on_epoch_end")``,
over the batches the estimator hands in, so skorch's history, callbacks
(``GradientNormClipping``, ``EpochTimer``) and ``train_step`` override points work
as documented; the estimator keeps the loop over epochs.
"""

from __future__ import annotations

import copy
import inspect
import threading
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, GradientNormClipping, PassthroughScoring
from skorch.history import History
from skorch.utils import to_tensor
from torch import nn

from ..._weights import decayed_keys
from .._base import (
    REGRESSION_LOSSES,
    Backend,
    TrainingConfig,
    fixed_size_batches,
    needs_specs,
    predict_batch_size,
    same_optimizer,
    widest_activation,
)
from . import distributed
from .modules import (
    SeededDropout,
    build_module,
    export_canonical,
    forward_to,
    load_canonical,
    prediction_module,
    rewrites,
)

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

#: held while a user's module draws from torch's global generator (see _seeded)
_GLOBAL_RNG = threading.Lock()


class SpecNet(NeuralNet):
    """skorch's ``NeuralNet`` with the NumPy backend's loss.

    Cross-entropy (with ``config.label_smoothing``) as a weighted mean over the
    batch, plus the L2 penalty ``0.5 * alpha * ||W||^2 / batch_weight`` on the
    parameters named in ``decayed`` (convolution and dense weights), exactly as the
    NumPy backend and ``MLPClassifier`` define ``alpha``. ``config`` is the
    estimator's :class:`TrainingConfig`; ``seeded_dropout`` says the module draws
    its dropout masks from generators of its own (built from specs).
    """

    def __init__(self, module, *args, config: TrainingConfig | None = None,
                 decayed: tuple = (), seeded_dropout: bool = False, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.config = TrainingConfig() if config is None else config
        self.decayed = decayed
        self.seeded_dropout = seeded_dropout
        #: the whole batch's weight while this process trains a share of it
        self.batch_total_weight = None

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Weighted mean loss (cross-entropy or a regression loss) plus the L2 penalty.

        ``y_true`` is the class codes (n,) or the regression targets (n, k); with
        sample weights, the weights are one more column, last (skorch hands targets
        through as one tensor).
        """
        y_true = y_true.to(y_pred.device)
        columns = 1 if self.config.loss == "cross_entropy" else y_pred.shape[1]
        if y_true.ndim == 2 and y_true.shape[1] == columns + 1:
            y_true, weights = y_true[:, :-1], y_true[:, -1]  # float64
        else:
            weights = None
        losses = _losses(y_pred, y_true, self.config)
        total, world = self.batch_total_weight, distributed.processes.world()[1]
        if total is not None and training:  # a share of the batch (data-parallel)
            # the processes' gradients are averaged: world * (this share's weighted
            # sum) / (the whole batch's weight) averages to the whole batch's mean
            batch_weight = total
            shares = torch.ones_like(losses, dtype=torch.float64) if weights is None \
                else weights
            loss = world * (losses * (shares / batch_weight).to(losses.dtype)).sum()
        elif weights is None:
            batch_weight, loss = float(len(losses)), losses.mean()
        else:
            batch_weight = float(weights.sum())  # > 0: the loop skips weightless batches
            # shares of the batch in float64 first: 1e300 (or 1e-300) overflows float32
            loss = (losses * (weights / batch_weight).to(losses.dtype)).sum()
        if self.config.alpha and batch_weight > 0 and training:
            params = dict(self.module_.named_parameters())
            decayed = [params[name] for name in self.decayed if params[name].requires_grad]
            penalty = sum((p * p).sum() for p in decayed)
            loss = loss + 0.5 * self.config.alpha * penalty / batch_weight
        return loss

    def infer(self, x, **fit_params):
        """The module's output. While training over several processes, through the
        module's ``DistributedDataParallel`` wrapper (which averages the gradients);
        while training with ``config.mixed_precision``, computed under
        ``torch.autocast`` (bfloat16 products, float32 weights) and returned as
        float32, so the loss and its gradient are summed in float32."""
        training = self.module_.training
        wrapper = distributed.data_parallel(self.module_, torch.device(self.device)) \
            if training else None
        if wrapper is None and not (self.config.mixed_precision and training):
            return super().infer(x, **fit_params)
        mixed = self.config.mixed_precision and training
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                            enabled=bool(mixed)):
            if wrapper is None:
                output = super().infer(x, **fit_params)
            else:
                output = wrapper(to_tensor(x, device=self.device), **fit_params)
        return output.float() if mixed else output

    @property
    def _default_callbacks(self):
        # the estimator prints its own progress table; skorch's PrintLog and a
        # validation scorer would only add per-batch work
        return [("epoch_timer", EpochTimer()),
                ("train_loss", PassthroughScoring(name="train_loss", on_train=True))]


def _losses(y_pred, y_true, config: TrainingConfig):
    """Each sample's loss: PyTorch's cross-entropy, or the mean over the outputs of
    the regression loss both backends read from ``backends.REGRESSION_LOSSES``."""
    if config.loss == "cross_entropy":
        return nn.functional.cross_entropy(y_pred, y_true.reshape(-1).long(),
                                           reduction="none",
                                           label_smoothing=config.label_smoothing)
    return REGRESSION_LOSSES[config.loss](y_pred - y_true.to(y_pred.dtype)).mean(dim=1)


class BatchEnd(Callback):
    """Hands each training batch's loss to ``listener`` (a progress bar), if one is set
    for the epoch."""

    def __init__(self):
        self.listener = None

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training and self.listener is not None:
            self.listener(loss.item())


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory, or a copy of it when it is read-only
    (a memory-mapped file, say): torch tensors are always writable."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX), as
    oneDNN's bfloat16 kernels need; elsewhere PyTorch emulates them in float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    probes = [getattr(torch.cpu, name) for name in checks if hasattr(torch.cpu, name)]
    try:
        # a torch without the probes (they are private) makes no claim: no warning
        return not probes or any(probe() for probe in probes)
    except RuntimeError:
        return True


def warn_if_slow_bfloat16(config: TrainingConfig, device: str) -> None:
    """Warn when bfloat16 autocast is asked for on a CPU that can only emulate it:
    measured on an AVX2-only AMD EPYC (ResNet20, 2,000 Fashion-MNIST images, one
    epoch), 71 s against float32's 11 s."""
    if (config.mixed_precision == "bfloat16" and torch.device(device).type == "cpu"
            and not cpu_has_bfloat16()):
        warnings.warn("mixed_precision='bfloat16' on a CPU without AVX-512 BF16 or AMX: "
                      "PyTorch emulates bfloat16 here, several times slower than float32 "
                      "(6.4x measured on an AVX2 CPU); use mixed_precision=None on this "
                      "machine", UserWarning, stacklevel=2)


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; a device this
    machine does not have is refused with a ValueError."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a torch device; use 'cpu', 'cuda', "
                         "'cuda:0', 'auto'...") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}
    if not available.get(kind, False):
        raise ValueError(f"device={device!r} but PyTorch sees no {kind.upper()} device here; "
                         "use device='cpu' or 'auto'")
    return device


class TorchBackend(Backend):
    """Builds an ``nn.Module`` from the specs and trains it with skorch."""

    name = "torch"
    mixed_precision = True

    def build(self, specs, input_shape, weights, *, config=None, dtype=np.float32,
              device="cpu"):
        device = distributed.process_device(resolve_device(device))
        # torch initialises every new layer from its global generator; the weights
        # are ours anyway, so that draw is made on a fork and the caller's stream stays
        with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
            module = build_module(specs, input_shape).to(TORCH_DTYPES[np.dtype(dtype)])
        load_canonical(module, weights)  # in the module's dtype: float64 stays exact
        if (torch.device(device).type == "cpu" and np.dtype(dtype) == np.float32
                and not (config and config.mixed_precision)):
            # kernels stored channels-last: oneDNN's CPU convolutions then run on
            # (N, H, W, C) activations. Measured (2 cores, 10,000 Fashion-MNIST images,
            # the two layouts alternating in one process): an epoch of LeNet 0.43 s
            # against 0.53, of the default net 1.37 against 1.82; inference 1.6-2x
            # faster. Canonical weights are exported C-contiguous all the same.
            # Float64 keeps the plain layout (channels-last slowed LeNet down), and so
            # does bfloat16 autocast (ResNet20's steps: 1,255 images/s against 1,300)
            module = module.to(memory_format=torch.channels_last)
        decayed = tuple(sorted(decayed_keys(specs, input_shape)))
        net = self._net(module, config or TrainingConfig(), device, decayed,
                        seeded_dropout=True)
        net.widest_activation_ = widest_activation(specs, input_shape)  # sizes passes
        return net

    def build_module(self, arch, input_shape, n_outputs: int, seed: int, *,
                     config: TrainingConfig, dtype=np.float32, device: str = "cpu"):
        """A model from a user's ``nn.Module`` subclass or instance (as skorch takes).

        A subclass gets those of ``n_classes`` and ``n_outputs`` (the one number:
        a classifier's classes, a regressor's outputs), ``in_channels`` and ``input_shape``
        that its ``__init__`` accepts and is initialised under ``seed``; an instance
        is deep-copied so refits start from the same weights. A dry run on one zero
        image checks that it outputs ``(n, n_outputs)``.
        """
        device = resolve_device(device)
        torch_dtype = TORCH_DTYPES[np.dtype(dtype)]
        if isinstance(arch, type):
            offered = {"n_classes": n_outputs, "n_outputs": n_outputs,
                       "in_channels": input_shape[0],
                       "input_shape": tuple(input_shape)}
            accepted = inspect.signature(arch).parameters
            with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                module = arch(**{k: v for k, v in offered.items() if k in accepted})
        else:
            module = copy.deepcopy(arch)
        module = module.to(torch_dtype)
        with torch.no_grad():
            try:
                out = module.eval()(torch.zeros((1, *input_shape), dtype=torch_dtype))
            except RuntimeError as exc:
                raise ValueError(f"The torch module fails on images of shape "
                                 f"{tuple(input_shape)} (C, H, W): {exc}") from None
        if tuple(out.shape) != (1, n_outputs):
            raise ValueError(f"The torch module must output (n_samples, {n_outputs}): "
                             f"one column per class (logits), or per regression output; "
                             f"it gave {tuple(out.shape)}")
        # a user's module: every weight matrix or kernel is decayed
        decayed = tuple(name for name, p in module.named_parameters()
                        if name.endswith("weight") and p.ndim >= 2)
        return self._net(module.train(), config, device, decayed, seeded_dropout=False)

    def _net(self, module, config, device, decayed, seeded_dropout) -> SpecNet:
        warn_if_slow_bfloat16(config, device)
        net = SpecNet(
            module, criterion=nn.CrossEntropyLoss, **_optimizer_params(config),
            train_split=None, verbose=0, device=device, config=config, decayed=decayed,
            seeded_dropout=seeded_dropout,
            callbacks=[("clip", GradientNormClipping(config.max_grad_norm)),
                       ("batch_end", BatchEnd())])
        net.initialize()
        _freeze(net, config.frozen_layers)
        return net

    def configure(self, model: SpecNet, config, keep_state) -> None:
        warn_if_slow_bfloat16(config, str(model.device))
        keep = keep_state and same_optimizer(model.config, config)
        model.set_params(config=config, callbacks__clip__gradient_clip_value=config.max_grad_norm)
        _freeze(model, config.frozen_layers)
        if not keep:
            # skorch's set_params refuses optimizer__* arguments on an initialized net
            # (it re-initializes modules and criteria only), so the old optimizer's
            # arguments go and the new ones are set as the attributes skorch reads
            for name in [name for name in vars(model) if name.startswith("optimizer__")]:
                delattr(model, name)
            for name, value in _optimizer_params(config).items():
                setattr(model, name, value)
            model.initialize_optimizer()

    def train_epoch(self, model: SpecNet, batches, seed, batch_end=None) -> float:
        net = model
        reporter = dict(net.callbacks_)["batch_end"]
        reporter.listener = batch_end
        try:
            with _seeded(net, seed):
                net.notify("on_epoch_begin")
                net.run_single_epoch(_tensors(net, batches), training=True, prefix="train",
                                     step_fn=net.train_step)
                net.notify("on_epoch_end")
        finally:  # the fitted net keeps no per-epoch listener (it need not pickle)
            reporter.listener = None
            net.batch_total_weight = None
            distributed.release(net.module_)
        if self.process_share(net)[1] == 1:
            return float(net.history[-1, "train_loss"])
        # the whole batches' losses: each is the mean of the processes' losses
        steps = net.history[-1, "batches"]
        losses = distributed.all_reduce_sum(torch.tensor(
            [step["train_loss"] for step in steps], dtype=torch.float64))
        sizes = distributed.all_reduce_sum(torch.tensor(
            [step["train_batch_size"] for step in steps], dtype=torch.float64))
        world = self.process_share(net)[1]
        return float((losses / world * sizes).sum() / sizes.sum().clamp(min=1))

    def reads_ahead(self, model: SpecNet) -> bool:
        # on the CPU, torch's threads take every core and wait on each other when a
        # reading thread takes one: three epochs of 20,000 PNG files trained in
        # 15.3-16.3 s reading ahead, 14.4-14.7 s reading between steps (arrays:
        # 10.1-10.5 s; 2-core Xeon). A GPU leaves the CPU free to read ahead.
        return torch.device(model.device).type != "cpu"

    def process_share(self, model: SpecNet) -> tuple[int, int]:
        distributed.start(str(model.device))
        return distributed.processes.world()

    def snapshot(self, model: SpecNet):
        return (copy.deepcopy(model.module_.state_dict()), model.config,
                copy.deepcopy(model.optimizer_.state_dict()), len(model.history))

    def restore(self, model: SpecNet, state) -> None:
        weights, config, optimizer, epochs = state
        if model.config != config:
            self.configure(model, config, keep_state=False)
        model.module_.load_state_dict(weights)
        model.optimizer_.load_state_dict(optimizer)
        del model.history[epochs:]

    def predict_output(self, model: SpecNet, X):
        module = rewritten = _evaluating(model)
        size = _pass_size(model, X.shape[1:])
        if (model.seeded_dropout and size >= FOLD_FROM and len(X) > FOLD_FROM // 2
                and rewrites(module)):
            rewritten = prediction_module(module)  # rounding apart, the same outputs
        with torch.inference_mode():
            chunks = [(rewritten if len(batch) >= FOLD_FROM else module)(
                          as_tensor(batch).to(model.device))[:n_real].cpu()
                      for batch, n_real in fixed_size_batches(X, dtype=self.dtype(model),
                                                              size=size)]
        return np.concatenate([chunk.numpy() for chunk in chunks], dtype=np.float64)

    def forward(self, model: SpecNet, X, key):
        module = _evaluating(model)
        if not model.seeded_dropout:
            raise needs_specs("layer outputs")
        with torch.inference_mode():
            chunks = [forward_to(module, as_tensor(batch).to(model.device), key)[:n_real]
                      .cpu() for batch, n_real in fixed_size_batches(X)]
        return torch.cat(chunks).numpy()

    def gradient(self, model: SpecNet, X, output_grad, key=None):
        module = _evaluating(model)
        if key is not None and not model.seeded_dropout:
            raise needs_specs("layer gradients")
        split = None if key is None else int(key) + 1
        size = predict_batch_size(X.shape[1:])
        activations, gradients = [], []
        with torch.enable_grad():
            for begin in range(0, len(X), size):
                x = as_tensor(X[begin:begin + size]).to(model.device)
                if split is None:
                    activation = x.requires_grad_(True)
                    out = module(activation)
                else:  # autograd from the layer's output on
                    with torch.no_grad():
                        activation = module[:split](x)
                    activation.requires_grad_(True)
                    out = module[split:](activation)
                weights = torch.from_numpy(output_grad[begin:begin + size]).to(out)
                (grad,) = torch.autograd.grad(out, activation, grad_outputs=weights)
                activations.append(activation.detach().cpu().numpy())
                gradients.append(grad.cpu().numpy())
        return np.concatenate(activations), np.concatenate(gradients)

    def to_portable(self, model: SpecNet) -> dict:
        """Everything of a spec-built model as NumPy arrays and plain Python values
        (weights, buffers, optimizer state, settings, skorch history, device): what
        pickle and skops store instead of torch objects (see ``BaseCNN.__getstate__``)."""
        return {"weights": self.get_weights(model), "config": model.config,
                "device": str(model.device), "history": [dict(row) for row in model.history],
                "optimizer": _tree(model.optimizer_.state_dict(),
                                   lambda t: t.detach().cpu().numpy())}

    def from_portable(self, specs, input_shape, state: dict) -> SpecNet:
        """The model :meth:`to_portable` described, on its device when this machine
        has it, else on the CPU (with a warning, as skorch does)."""
        device = state["device"]
        try:
            resolve_device(device)
        except ValueError:
            warnings.warn(f"The model was saved on device {device!r}, which this machine "
                          "does not have; it is loaded on the CPU.", UserWarning, stacklevel=4)
            device = "cpu"
        weights = state["weights"]
        model = self.build(specs, input_shape, weights, config=state["config"],
                           dtype=next(iter(weights.values())).dtype, device=device)
        model.optimizer_.load_state_dict(_tree(
            state["optimizer"], lambda a: torch.from_numpy(np.array(a)).to(model.device)))
        model.history = History(state["history"])
        return model

    def get_weights(self, model: SpecNet):
        return export_canonical(model.module_)

    def set_weights(self, model: SpecNet, weights):
        load_canonical(model.module_, weights)

    def dtype(self, model: SpecNet):
        param = next(model.module_.parameters(), None)
        return np.dtype(np.float32 if param is None else str(param.dtype).split(".")[-1])


#: values of the widest activation per prediction pass on the CPU (see
#: ``predict_batch_size``): 128 images for the default network on 28x28 images
#: (16 maps of 28x28), 512 for LeNet (6 maps of 24x24). Measured on 1,000
#: Fashion-MNIST images (2 cores, float32, channels-last, BatchNorm not yet folded):
#: the default network took 30 ms in passes of 64 or 128 images, 58 in passes of
#: 256 and 71 in passes of 512 (with BatchNorm folded, 26 ms in passes of 64 to 512);
#: LeNet's predict 15.9 ms in passes of 128 images and 13.5 in passes of 512.
PREDICT_ACTIVATIONS_CPU = 2**21

#: input values per prediction pass on the CPU for a module the estimator did not
#: build from specs (its activations unknown): 128 images of 28x28. A GPU keeps
#: passes of 2**20 input values.
PREDICT_VALUES_CPU = 2**17


def _pass_size(model: SpecNet, image_shape: tuple) -> int:
    """Images per prediction pass (a power of two; see ``fixed_size_batches``)."""
    if torch.device(model.device).type != "cpu":
        return predict_batch_size(image_shape, 2**20)
    widest = getattr(model, "widest_activation_", None)  # None: a user's module
    if widest is None:
        return predict_batch_size(image_shape, PREDICT_VALUES_CPU)
    return predict_batch_size(image_shape, PREDICT_ACTIVATIONS_CPU, widest)


#: passes of at least this many images run through ``prediction_module`` (BatchNorm
#: folded into the convolutions, activations moved after their max-pools, 2x2
#: max-pools computed by halving): folding
#: costs a copy of the convolutions (about a millisecond for the default network),
#: which a pass of 128 28x28 images repays (the default network's 1,024 images took
#: 21.5 ms instead of 35.5; LeNet's, which has nothing to fold, 14.0 instead of 15.0).
#: Decided pass by pass, so a pass of a given size is always computed the same way
#: (the copy is made only for calls with such a pass: more than half of
#: ``FOLD_FROM`` images).
FOLD_FROM = 128


def _evaluating(model: SpecNet) -> nn.Module:
    """The model's module in evaluation mode, switched only when it is not already:
    ``eval()`` walks every submodule (0.1 ms of a one-image prediction's 0.5)."""
    module = model.module_
    if module.training:
        module.eval()
    return module


def _tree(value, convert):
    """``value`` (dicts, lists, tuples) with ``convert`` applied to every tensor (or,
    on the way back, every NumPy array)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return convert(value)
    if isinstance(value, dict):
        return {key: _tree(item, convert) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_tree(item, convert) for item in value)
    return value


def _optimizer_params(config: TrainingConfig) -> dict:
    """skorch's optimizer arguments for the estimator's solver."""
    if config.solver == "sgd":
        return {"optimizer": torch.optim.SGD, "lr": config.learning_rate_init,
                "optimizer__momentum": config.momentum,
                "optimizer__nesterov": config.nesterovs_momentum and config.momentum > 0}
    return {"optimizer": torch.optim.Adam, "lr": config.learning_rate_init,
            "optimizer__betas": (config.beta_1, config.beta_2),
            "optimizer__eps": config.epsilon}


def _freeze(net: SpecNet, frozen_layers: int) -> None:
    """Leading top-level layers of a spec-built module stop training (a user's own
    module is left as it is)."""
    if net.seeded_dropout:
        for name, param in net.module_.named_parameters():
            param.requires_grad_(int(name.split(".")[0]) >= frozen_layers)


def _tensors(net: SpecNet, batches):
    """The estimator's batches as skorch's (X, y) pairs, each batch's learning rate set
    on the optimizer just before its step."""
    for batch in batches:
        for group in net.optimizer_.param_groups:
            group["lr"] = batch.learning_rate
        net.batch_total_weight = batch.total_weight
        regression = batch.y.ndim == 2
        if batch.sample_weight is None:
            targets = torch.from_numpy(batch.y if regression else batch.y.astype(np.int64))
        else:
            columns = batch.y if regression else batch.y[:, None]
            targets = torch.from_numpy(np.column_stack([columns, batch.sample_weight])
                                       .astype(np.float64))
        yield as_tensor(batch.X), targets


@contextmanager
def _seeded(net: SpecNet, seed: int):
    """Seed the epoch's dropout masks. A module built from specs has generators of
    its own; a user's module draws from torch's global generator, which is then
    forked (left as it was) and held by one fit at a time, so parallel fits are as
    reproducible as sequential ones."""
    if net.seeded_dropout:
        dropouts = [m for m in net.module_.modules() if isinstance(m, SeededDropout)]
        for position, layer in enumerate(dropouts):
            layer.seed(int(np.random.default_rng([int(seed), position]).integers(2**62)),
                       torch.device(net.device))
        yield
        return
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


BACKEND = TorchBackend()
