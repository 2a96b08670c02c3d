"""The PyTorch backend: the same specs as an ``nn.Module``, trained through skorch."""

from __future__ import annotations

import copy
import inspect
import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring
from torch import nn

from ..._weights import decayed_keys
from .._base import (
    Backend,
    EpochPlan,
    FitResult,
    TrainingConfig,
    fixed_size_batches,
)
from ..numpy.functional import softmax
from .modules import build_module, export_canonical, load_canonical

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class BatchIterator:
    """Mini-batches by slicing whole tensors.

    ``torch.utils.data.DataLoader`` fetches one sample at a time and stacks them;
    for in-memory arrays one indexing operation per batch does the same work, and
    is what a hand-written PyTorch loop does. The order is drawn from a seeded
    ``torch.Generator``, so ``random_state`` fixes it.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = False, seed: int = 0,
                 augment=None):
        self.X, self.y = dataset.X, dataset.y
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        n = len(self.X)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for begin in range(0, n, self.batch_size):
            batch = (order[begin:begin + self.batch_size] if order is not None
                     else slice(begin, begin + self.batch_size))
            X_batch = self.X[batch]
            if self.augment is not None:  # the NumPy augmentations, on the CPU batch
                X_batch = torch.from_numpy(np.ascontiguousarray(self.augment(X_batch.numpy())))
            yield X_batch, (None if self.y is None else self.y[batch])


class SpecNet(NeuralNet):
    """skorch's ``NeuralNet`` with the NumPy backend's loss.

    Cross-entropy plus the L2 penalty ``0.5 * alpha * ||W||^2 / batch_size`` on the
    parameters named in ``decayed`` (convolution and dense weights), exactly as
    ``CNNClassifier``'s NumPy backend and ``MLPClassifier`` define ``alpha``. The
    penalty's gradient, ``alpha * W / batch_size``, is added directly after the
    backward pass rather than traced by autograd, which would cost a graph per step.
    """

    def __init__(self, module, *args, alpha: float = 0.0, decayed: tuple = (),
                 max_grad_norm: float | None = None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.alpha = alpha
        self.decayed = decayed
        self.max_grad_norm = max_grad_norm

    def _decayed_params(self) -> list[torch.Tensor]:
        params = dict(self.module_.named_parameters())
        return [params[name] for name in self.decayed if params[name].requires_grad]

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Weighted mean cross-entropy plus the L2 penalty.

        ``y_true`` is either the class codes (n,) or, with sample weights, an
        (n, 2) float64 tensor of codes and weights.
        """
        if y_true.ndim == 2:
            codes, weights = y_true[:, 0].long(), y_true[:, 1].to(y_pred.dtype)
            losses = nn.functional.cross_entropy(y_pred, codes, reduction="none")
            self.batch_weight_ = float(weights.sum())
            loss = (losses * weights).sum() / max(self.batch_weight_, 1e-300)
        else:
            loss = super().get_loss(y_pred, y_true, X=X, training=training)
            self.batch_weight_ = float(len(y_pred))
        if self.alpha and self.batch_weight_ > 0:
            with torch.no_grad():
                penalty = sum(torch.vdot(p.flatten(), p.flatten())
                              for p in self._decayed_params())
            loss = loss + 0.5 * self.alpha * penalty / self.batch_weight_
        return loss

    @property
    def _default_callbacks(self):
        # the estimator prints its own progress table; skorch's PrintLog and an
        # empty validation scorer would only add per-batch calls
        callbacks = [("epoch_timer", EpochTimer()),
                     ("train_loss", PassthroughScoring(name="train_loss", on_train=True))]
        if self.train_split is not None:
            callbacks.append(("valid_loss", PassthroughScoring(name="valid_loss")))
        return callbacks

    def _set_training(self, training=True):
        # skorch switches every submodule's mode before every batch; switching only
        # when the mode changes saves a walk over the module tree per step
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        if self.alpha and self.batch_weight_ > 0:
            with torch.no_grad():
                for param in self._decayed_params():
                    param.grad.add_(param, alpha=self.alpha / self.batch_weight_)
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.module_.parameters(), self.max_grad_norm)
        return step


class _BatchHooks(Callback):
    """Runs the plan's per-batch hooks: each training batch's learning rate from the
    schedule, and its loss to ``batch_end`` (a progress bar)."""

    def __init__(self):
        self.learning_rate = None  # (batch, n_batches) -> lr
        self.batch_end = None  # (loss) -> None
        self.n_batches = 1

    def on_epoch_begin(self, net, **kwargs):
        self.batch = 0

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training and self.learning_rate is not None:
            for group in net.optimizer_.param_groups:
                group["lr"] = self.learning_rate(self.batch, self.n_batches)
            self.batch += 1

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training and self.batch_end is not None:
            self.batch_end(loss.item())


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory, or a copy of it when it is read-only
    (a memory-mapped file, say): torch tensors are always writable."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but PyTorch sees no CUDA device; use "
                         "device='cpu' or 'auto'")
    return device


class TorchBackend(Backend):
    """Builds an ``nn.Module`` from the specs and trains it with skorch."""

    name = "torch"

    def build(self, specs, input_shape, weights, seed, device="cpu", dtype=np.float32):
        module = build_module(specs, input_shape)
        load_canonical(module, weights)
        module = module.to(TORCH_DTYPES[np.dtype(dtype)])
        # marks a module built from specs (a user's module has neither attribute)
        module.decayed_keys = tuple(sorted(decayed_keys(specs, input_shape)))
        return self._net(module, TrainingConfig(max_iter=0, device=device), seed).initialize()

    def build_module(self, arch, input_shape, n_classes: int, seed: int,
                     device: str = "cpu", dtype=np.float32) -> SpecNet:
        """A model from a user's ``nn.Module`` subclass or instance (as skorch takes).

        A subclass gets those of ``n_classes``, ``in_channels`` and ``input_shape``
        that its ``__init__`` accepts and is initialised under ``seed``; an instance
        is deep-copied so refits start from the same weights. A dry run on one zero
        image checks that it outputs ``(n, n_classes)`` logits.
        """
        if isinstance(arch, type):
            offered = {"n_classes": n_classes, "in_channels": input_shape[0],
                       "input_shape": tuple(input_shape)}
            accepted = inspect.signature(arch).parameters
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                module = arch(**{k: v for k, v in offered.items() if k in accepted})
        else:
            module = copy.deepcopy(arch)
        module = module.to(TORCH_DTYPES[np.dtype(dtype)])
        with torch.no_grad():
            try:
                out = module.eval()(torch.zeros((1, *input_shape), dtype=TORCH_DTYPES[
                    np.dtype(dtype)]))
            except RuntimeError as exc:
                raise ValueError(f"The torch module fails on images of shape "
                                 f"{tuple(input_shape)} (C, H, W): {exc}") from None
        if tuple(out.shape) != (1, n_classes):
            raise ValueError(f"The torch module must output (n_samples, {n_classes}) "
                             f"logits for {n_classes} classes; it gave {tuple(out.shape)}")
        module = module.to(TORCH_DTYPES[np.dtype(dtype)]).train()
        return self._net(module, TrainingConfig(max_iter=0, device=device), seed).initialize()

    def _net(self, module: nn.Module, config: TrainingConfig, seed: int) -> SpecNet:
        decayed = getattr(module, "decayed_keys", None)  # set by build() from the specs
        if decayed is None:  # a user's module: every weight matrix or kernel
            decayed = tuple(name for name, p in module.named_parameters()
                            if name.endswith("weight") and p.ndim >= 2)
        if config.solver == "sgd":
            optimizer = torch.optim.SGD
            options = {"optimizer__momentum": config.momentum,
                       "optimizer__nesterov": config.nesterovs_momentum and config.momentum > 0}
        else:
            optimizer = torch.optim.Adam
            options = {"optimizer__betas": (config.beta_1, config.beta_2),
                       "optimizer__eps": config.epsilon}
        return SpecNet(
            module, criterion=nn.CrossEntropyLoss, optimizer=optimizer,
            lr=config.learning_rate_init, max_epochs=config.max_iter,
            batch_size=config.batch_size, train_split=None,
            iterator_train=BatchIterator, iterator_train__shuffle=config.shuffle,
            iterator_train__seed=seed, iterator_valid=BatchIterator,
            callbacks=[("batch_hooks", _BatchHooks())], verbose=0,
            iterator_train__augment=None, max_grad_norm=config.max_grad_norm,
            device=resolve_device(config.device), alpha=config.alpha, decayed=decayed,
            **options,
        )

    def fit(self, model: SpecNet, X, y, config: TrainingConfig, seed,
            sample_weight=None,
            resume=False, plan: EpochPlan | None = None) -> FitResult:
        plan = plan or EpochPlan()
        module = model.module_
        if hasattr(module, "decayed_keys"):  # built from specs: freeze leading layers; a user's
            for name, param in module.named_parameters():  # own module is left as it is
                param.requires_grad_(int(name.split(".")[0]) >= config.frozen_layers)
        if resume and model.max_epochs > 0:  # trained before: keep its optimizer state
            net = model
            # plain attributes: skorch's set_params would re-initialize nothing here
            # and refuses iterator parameters on an initialized net
            net.iterator_train__seed, net.batch_size = seed, config.batch_size
        else:
            net = self._net(module, config, seed).initialize()
        hooks = dict(net.callbacks_)["batch_hooks"]  # after skorch's default callbacks
        hooks.learning_rate, hooks.batch_end = plan.learning_rate, plan.batch_end
        hooks.n_batches = math.ceil(len(X) / config.batch_size)
        net.iterator_train__augment = plan.augment
        targets = torch.from_numpy(y.astype(np.int64))
        if sample_weight is not None:
            targets = torch.from_numpy(np.stack([y, sample_weight], axis=1).astype(np.float64))
        done = len(net.history)
        # seed dropout without touching the caller's global torch RNG state
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                net.partial_fit(as_tensor(X), targets, epochs=config.max_iter)
        finally:  # the fitted net keeps none of the per-call hooks (they need not pickle)
            hooks.learning_rate = hooks.batch_end = net.iterator_train__augment = None
        if "train_loss" not in net.history[-1]:
            raise KeyboardInterrupt  # skorch swallowed one mid-epoch: pass it on
        losses = [float(loss) for loss in net.history[done:, "train_loss"]]
        return FitResult(losses, len(X) * len(losses), model=net)

    def predict_proba(self, model: SpecNet, X):
        module = model.module_.eval()
        with torch.inference_mode():
            chunks = [module(as_tensor(batch).to(model.device))[:n_real].cpu()
                      for batch, n_real in fixed_size_batches(X)]
        return softmax(torch.cat(chunks).numpy().astype(np.float64))

    def features(self, model: SpecNet, X):
        module = model.module_.eval()
        if not isinstance(module, nn.Sequential):
            raise ValueError("features need a network built from sklearn_cnn.layers "
                             "specs; a custom torch.nn.Module has no known last layer")
        with torch.inference_mode():
            chunks = [module[:-1](as_tensor(batch).to(model.device))[:n_real]
                      .flatten(1).cpu() for batch, n_real in fixed_size_batches(X)]
        return torch.cat(chunks).numpy()

    def get_weights(self, model: SpecNet):
        return export_canonical(model.module_)

    def set_weights(self, model: SpecNet, weights):
        load_canonical(model.module_, weights)

    def dtype(self, model: SpecNet):
        param = next(model.module_.parameters(), None)
        return np.dtype(np.float32 if param is None else str(param.dtype).split(".")[-1])


BACKEND = TorchBackend()
