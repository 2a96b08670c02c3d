"""The NumPy backend: one epoch of mini-batch steps on a :class:`Network`, and inference."""

from __future__ import annotations

import itertools
import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cache

import numpy as np

# a dependency of scikit-learn's own, which limits BLAS threads with it too
from threadpoolctl import ThreadpoolController

from ... import distributed as processes
from ..._weights import decayed_keys
from .._base import (
    Backend,
    TrainingConfig,
    fixed_size_batch,
    mean_loss,
    predict_batch_size,
    prediction_passes,
    same_optimizer,
)
from . import layers as numpy_layers
from .layers import ShiftedConv2d
from .losses import regression_loss, softmax_cross_entropy
from .network import Network
from .optim import OPTIMIZERS
from .shards import Shards, shard_count
from .threads import block_threads, map_passes


class NumpyBackend(Backend):
    """SGD or Adam on a :class:`Network`, written from scratch."""

    name = "numpy"

    def build(self, specs, input_shape, weights, *, config=None, dtype=np.float32,
              device="cpu"):
        if device not in ("cpu", "auto"):
            raise ValueError(f"The numpy backend runs on the CPU; got device={device!r}. "
                             "Use backend='torch' for GPUs")
        model = Network(specs, input_shape, weights, dtype=dtype)
        self.configure(model, config or TrainingConfig(), keep_state=False)
        return model

    def configure(self, model: Network, config: TrainingConfig, keep_state: bool) -> None:
        if keep_state and model.optimizer is not None and same_optimizer(model.config, config):
            model.config = config
            return
        layers = [layer for layer in model.layers()
                  if int(layer.key.split(".")[0]) >= config.frozen_layers]
        decayed = decayed_keys(model.specs, model.input_shape)
        model.trained = [(layer, name) for layer in layers for name in layer.params]
        model.decayed = [(layer, name) for layer, name in model.trained
                         if f"{layer.key}.{name}" in decayed]
        arrays = [layer.params[name] for layer, name in model.trained]
        model.optimizer = _make_optimizer(config, arrays)
        model.config = config

    def train_epoch(self, model: Network, batches, seed, batch_end=None) -> float:
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return mean_loss([], [])
        losses, sizes = [], []
        with _steps(model, len(first.y)) as steps:
            steps.seed_dropout(seed)
            for batch in itertools.chain([first], batches):
                model.optimizer.learning_rate = batch.learning_rate
                # a diverging run overflows to inf/nan: the estimator checks every
                # epoch's loss and weights and reports it, so numpy need not warn too
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    loss = _train_step(model, steps, batch)
                losses.append(loss)
                sizes.append(len(batch.y))
                if batch_end is not None:
                    batch_end(loss)
        model.clear_cache()
        return mean_loss(losses, sizes)

    def process_share(self, model: Network) -> tuple[int, int]:
        if processes.launched() and not processes.in_single_process():
            warnings.warn("this process is one of several that torchrun started, but "
                          "backend='numpy' trains in one process: each process trains "
                          "the whole network on every batch. Use backend='torch' to "
                          "share the batches out", UserWarning, stacklevel=2)
        return 0, 1

    def snapshot(self, model: Network):
        optimizer = None if model.optimizer is None else model.optimizer.state_dict()
        return model.get_weights(), optimizer

    def restore(self, model: Network, state) -> None:
        weights, optimizer = state
        model.set_weights(weights)
        if optimizer is not None:
            model.optimizer.load_state_dict(optimizer)

    def predict_output(self, model: Network, X):
        chunks = _passes(model, X, model.prediction())
        return np.concatenate(chunks, dtype=np.float64)

    def forward(self, model: Network, X, key):
        return np.concatenate(_passes(model, X, lambda batch: model.forward_to(batch, key)))

    def gradient(self, model: Network, X, output_grad, key=None):
        # a twin of the network whose first layer returns the input gradient too
        # (training never needs it, so the model's own first layer skips that work)
        twin = Network(model.specs, model.input_shape, model.get_weights(),
                       dtype=model.dtype, input_grad=True)
        split = 0 if key is None else int(key) + 1
        head, tail = twin.root.layers[:split], twin.root.layers[split:]
        size = predict_batch_size(X.shape[1:], PREDICT_VALUES)
        activations, gradients = [], []
        for begin in range(0, len(X), size):
            activation = X[begin:begin + size]
            for layer in head:
                activation = layer.forward(activation, training=False)
            out = activation
            for layer in tail:
                out = layer.forward(out, training=False)
            grad = output_grad[begin:begin + size].astype(out.dtype)
            for layer in reversed(tail):
                grad = layer.backward(grad)
            activations.append(activation)
            gradients.append(grad)
        return np.concatenate(activations), np.concatenate(gradients)

    def get_weights(self, model: Network):
        return model.get_weights()

    def set_weights(self, model: Network, weights):
        model.set_weights(weights)

    def dtype(self, model: Network):
        return np.dtype(model.dtype)

    def device_for(self, device):
        return "cpu"

    def portable_types(self):
        # a Network is NumPy through and through: its layers and optimizers
        layers = [cls for cls in vars(numpy_layers).values()
                  if isinstance(cls, type) and issubclass(cls, numpy_layers.Layer)]
        return [*super().portable_types(), Network, *layers, *OPTIMIZERS.values()]


#: values of the widest array a prediction pass holds (``Network.prediction_width``;
#: see predict_batch_size): 128 images for the default network and simple (16 maps of
#: 14x14 and 8 of 28x28), 64 for ResNet20 (16 of 28x28), 512 for LeNet (6 of 12x12:
#: its convolutions pool in windows, so no full-size map is ever held). Passes run on
#: threads, and every NumPy call of a pass hands the GIL over, so fewer, larger
#: passes pay, as far as the cache allows. Measured on 2 cores, 1,000 images in
#: passes of 64, 128 and 256: LeNet 15.6, 10.9 and 8.5 ms; the default network 28.5,
#: 25.1 and 25.1 ms; simple 36, 49 and 45 ms (before its second convolution pooled
#: in windows: at 128 images its full-size maps, 3.2-6.4 MB, outgrew a 2 MB L2
#: cache). With the windows, passes of 64, 128 and 256: the default network 34-35,
#: 29-31 and 42 ms, simple 37, 35-36 and 44-45 ms; LeNet in 256 and 512: 9.1 and
#: 8.2-8.9 ms.
PREDICT_ACTIVATIONS = 900 * 1024

#: input values per pass of ``gradient``: 64 images of 28x28
PREDICT_VALUES = 2**16


def _passes(model: Network, X: np.ndarray, run) -> list[np.ndarray]:
    """``run(batch)[:n_real]`` for each prediction pass over X (``prediction_passes``),
    the passes shared out to as many threads as BLAS had (``threads.map_passes``).

    A pass takes at most the largest power of two in half the images (8 at least),
    so that two threads both have one (LeNet's 256 images of 3x32x32 took 9.5 ms in
    one pass of 256, 6.2 ms in two of 128, on 2 cores), whatever the thread count:
    the passes, and so the scores, are the same with one thread or several."""
    size = predict_batch_size(X.shape[1:], PREDICT_ACTIVATIONS, model.prediction_width)

    def one_pass(item: tuple[int, int]) -> np.ndarray:  # converted here, pass by pass
        batch, n_real = fixed_size_batch(X, *item, model.dtype)
        return run(batch)[:n_real]

    try:
        with _blas_on_one_thread() as workers:
            half = max(1 << max(len(X) // 2, 1).bit_length() - 1, 8)
            passes = prediction_passes(len(X), min(size, half))
            return map_passes(one_pass, passes, workers)
    finally:
        model.clear_cache()


@cache
def _blas() -> ThreadpoolController:
    # made once: inspecting the loaded libraries takes 0.4-2 ms, a limit 0.04 ms
    return ThreadpoolController().select(user_api="blas")


@contextmanager
def _blas_on_one_thread() -> Iterator[int]:
    """BLAS held at one thread within the block; yields how many it had, the
    threads the caller may run its own work on instead.

    Only in the main thread: BLAS's thread count is one for the whole process, and
    OpenBLAS refuses to raise it again from another thread (measured: set to 1 in
    one thread, 2 from another stays 1). Elsewhere (a GridSearchCV on threads, say)
    BLAS is left as it was found, and the block is told it has one thread.
    """
    workers = _blas_workers()
    if workers <= 1:
        yield 1
        return
    with _blas().limit(limits=1):
        yield workers


def _blas_workers() -> int:
    """BLAS's threads now, or 1 outside the main thread (see _blas_on_one_thread)."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    return max([library["num_threads"] for library in _blas().info()], default=1)


class _Unsharded:
    """A network's own training steps, for :func:`_train_step` (``shards.Shards``'
    counterpart)."""

    def __init__(self, model: Network):
        self.model = model

    def seed_dropout(self, seed: int) -> None:
        self.model.seed_dropout(seed)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.model.forward(x, training=True)

    def backward(self, dout: np.ndarray) -> None:
        self.model.backward(dout)

    def update(self, optimizer, grads: list[np.ndarray]) -> None:
        optimizer.update_params(grads)


@contextmanager
def _steps(model: Network, batch_size: int) -> Iterator[Shards | _Unsharded]:
    """How an epoch's training steps run on the cores BLAS had:

    - batches large enough to pay (``shards.shard_count``) in shards, one thread
      each, with BLAS single-threaded meanwhile;
    - otherwise whole, a network with shifted convolutions with their column blocks
      on those threads and BLAS single-threaded (``threads.map_blocks``), others
      with BLAS's own threads, which serve their im2col products best.

    In the main thread only: see :func:`_blas_on_one_thread` (fits in other threads
    run on one core, as BLAS was left).
    """
    shifted = any(isinstance(layer, ShiftedConv2d) for layer in model.all_layers())
    with ExitStack() as stack:
        workers = _blas_workers()
        if shard_count(batch_size, model.widest_activation, workers) > 1:
            stack.enter_context(_blas_on_one_thread())
            yield stack.enter_context(Shards(model, workers))
            return
        if shifted:
            stack.enter_context(block_threads(stack.enter_context(_blas_on_one_thread())))
        yield _Unsharded(model)


def _make_optimizer(config: TrainingConfig, arrays):
    if config.solver == "sgd":
        return OPTIMIZERS["sgd"](arrays, config.learning_rate_init, config.momentum,
                                 config.nesterovs_momentum)
    return OPTIMIZERS["adam"](arrays, config.learning_rate_init, config.beta_1,
                              config.beta_2, config.epsilon)


def _train_step(model: Network, steps: Shards | _Unsharded, batch) -> float:
    """One forward, backward and update on a mini-batch; returns the batch loss.
    ``steps`` runs the passes, whole or in shards (:func:`_steps`)."""
    config, weights = model.config, batch.sample_weight
    total_weight = len(batch.X) if weights is None else float(weights.sum())  # > 0
    outputs = steps.forward(batch.X)
    if config.loss == "cross_entropy":
        loss, doutputs = softmax_cross_entropy(outputs, batch.y, weights,
                                               config.label_smoothing)
    else:
        loss, doutputs = regression_loss(outputs, batch.y, weights, config.loss)
    steps.backward(doutputs)
    # L2 penalty as in MLPClassifier: 0.5 * alpha * ||W||^2 / batch size (its total
    # sample weight when weighted), on weights only; no passes over them for alpha=0
    scale = config.alpha / total_weight
    for layer, name in model.decayed if config.alpha else ():
        weight = layer.params[name]
        loss += 0.5 * scale * float(np.vdot(weight, weight))
        layer.grads[name] += scale * weight
    grads = [layer.grads[name] for layer, name in model.trained]
    if config.max_grad_norm is not None:
        clip_grad_norm(grads, config.max_grad_norm)
    steps.update(model.optimizer, grads)
    return loss


def clip_grad_norm(grads: list[np.ndarray], max_norm: float) -> None:
    """Scale all gradients down, in place, so their global L2 norm is <= max_norm."""
    norm = np.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if norm > max_norm:
        for grad in grads:
            grad *= max_norm / (norm + 1e-6)


BACKEND = NumpyBackend()
