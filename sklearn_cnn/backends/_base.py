"""The interface every backend implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from ..layers import LayerSpec, Shape


def predict_batch_size(image_shape: tuple[int, ...], values: int = 2**20,
                       widest: int | None = None) -> int:
    """Images per forward pass at prediction time, from the image size alone, or from
    the network's widest activation.

    About ``values`` input values per pass (activations grow with them), a power of
    two between 8 and 512: with a million, 512 for 28x28, 256 for 3x32x32, 8 for
    3x224x224. With ``widest``, the values of one image's largest activation
    (:func:`widest_activation`), a pass holds about ``values`` of those instead: the
    backends size their CPU prediction passes so (the NumPy backend's smaller, so
    that its im2col columns are reused from the cache).
    """
    per_image = math.prod(image_shape) if widest is None else widest
    return int(min(512, max(8, 2 ** math.floor(math.log2(max(1, values // per_image))))))


def widest_activation(specs: tuple[LayerSpec, ...], input_shape: Shape) -> int:
    """Values in one image's largest activation: the input, or a layer's output
    (a residual block's, for the layers inside it)."""
    shape, widest = tuple(input_shape), math.prod(input_shape)
    for spec in specs:
        shape = spec.output_shape(shape)
        widest = max(widest, math.prod(shape))
    return widest


def prediction_passes(n: int, size: int) -> list[tuple[int, int]]:
    """``(begin, pass_size)`` of the forward passes that predict ``n`` images: passes
    of ``size`` (a power of two), then the rest in one pass of the smallest power of
    two that holds it. One image is one pass of one image (no padding to ``size``,
    which made a single prediction cost a whole pass), and pass shapes stay few."""
    whole = n - n % size
    passes = [(begin, size) for begin in range(0, whole, size)]
    if n > whole:
        passes.append((whole, 1 << (n - whole - 1).bit_length()))
    return passes


def fixed_size_batch(X: np.ndarray, begin: int, size: int, dtype=None
                     ) -> tuple[np.ndarray, int]:
    """``(batch, n_real)``: images ``begin:begin + size`` of X, padded with zero images
    to exactly ``size``, in ``dtype`` (uint8 pixels scaled by 1/255, as at fit time).

    Prediction converts X one pass at a time this way, so a large ``uint8`` array (a
    memory-mapped file, say) is never copied whole to floats."""
    batch = X[begin:begin + size]
    n_real = len(batch)
    dtype = np.dtype(X.dtype if dtype is None else dtype)
    if batch.dtype == np.uint8:
        batch = batch.astype(dtype) / dtype.type(255)
    batch = np.ascontiguousarray(batch, dtype=dtype)
    if n_real < size:
        padding = np.zeros((size - n_real, *X.shape[1:]), dtype=dtype)
        batch = np.concatenate([batch, padding])
    return batch, n_real


def fixed_size_batches(X: np.ndarray, values: int = 2**20, dtype=None,
                       size: int | None = None) -> Iterator[tuple[np.ndarray, int]]:
    """Yield :func:`fixed_size_batch` es over X, one per :func:`prediction_passes`
    pass of at most ``size`` images (default: ``predict_batch_size`` of ``values``).

    Matrix-product libraries pick their summation order by matrix shape, so in
    float32 an image's scores can change in their last bits (~1e-7 relative) with
    the size of the pass that computes them. Every pass size is a power of two: an
    image's scores are the same bit for bit in any pass of the same size, whatever
    else is in it (its place in the pass can still change the last bits, ~2e-7
    measured: BLAS's kernels treat the columns at a tile's edge apart), and memory
    stays bounded on large inputs.
    """
    size = predict_batch_size(X.shape[1:], values) if size is None else size
    for begin, pass_size in prediction_passes(len(X), size):
        yield fixed_size_batch(X, begin, pass_size, dtype)


#: where the Huber loss turns from quadratic to linear, in units of the target's
#: standard deviation (the estimator standardizes regression targets)
HUBER_DELTA = 1.0


def _huber(r):
    """torch.nn.HuberLoss's elementwise loss: ``0.5 * r**2`` up to ``|r| = delta``, then
    linear, so an outlier pulls with a bounded force."""
    size = abs(r)
    inner = size.clip(max=HUBER_DELTA)
    return 0.5 * inner * inner + HUBER_DELTA * (size - inner)


#: The regression losses, elementwise on the residual ``r = output - target``, written
#: with the operators NumPy arrays and torch tensors share, so both backends compute
#: one definition (as scikit-learn's ``neural_network._base.LOSS_FUNCTIONS``). A
#: sample's loss is the mean over its outputs; squared error is MLPRegressor's
#: ``0.5 * r**2``.
REGRESSION_LOSSES: dict[str, Callable] = {
    "squared_error": lambda r: 0.5 * r * r,
    "huber": _huber,
    "absolute_error": abs,
}

#: Their derivatives with respect to ``r``: what the NumPy backend's backward pass
#: starts from (autograd differentiates the torch backend's).
REGRESSION_DERIVATIVES: dict[str, Callable] = {
    "squared_error": lambda r: r,
    "huber": lambda r: r.clip(-HUBER_DELTA, HUBER_DELTA),
    "absolute_error": np.sign,
}

#: every loss a :class:`TrainingConfig` may name: softmax cross-entropy against class
#: codes (a classifier), then the regression losses
LOSSES = ("cross_entropy", *REGRESSION_LOSSES)


def prediction_plan(layers: list, kind: Callable[[object], str]) -> list[tuple]:
    """The rewrite of a sequence of layers that both backends predict with, as groups
    to run in order (residual blocks are each backend's to enter):

    - ``("fold", conv, norm)``: a convolution followed by a BatchNorm, to run as one
      convolution. At prediction time BatchNorm is ``x * scale + shift`` per channel
      (running statistics), which the kernel and bias absorb (``W * scale``,
      ``b * scale + shift``): one pass over the feature maps fewer.
    - ``("run", pool, activation)``: an activation that never decreases (ReLU, leaky
      ReLU with a slope of 0 or more, tanh, sigmoid) followed by a 2x2 max-pool, run
      after the pool instead, on a quarter of the values:
      ``max(f(a), f(b)) = f(max(a, b))``.
    - ``("run", layer)``: any other layer, as it is.

    ``kind(layer)`` names a layer ``"conv"``, ``"norm"`` (a BatchNorm of feature
    maps), ``"monotone"``, ``"pool"`` (a max-pool) or anything else. The scores
    change by rounding only.
    """
    plan, i = [], 0
    while i < len(layers):
        pair = tuple(layers[i:i + 2])
        kinds = tuple(kind(layer) for layer in pair)
        if kinds == ("conv", "norm"):
            plan.append(("fold", *pair))
        elif kinds == ("monotone", "pool"):
            plan.append(("run", *pair[::-1]))
        else:
            plan.append(("run", pair[0]))
        i += len(plan[-1]) - 1
    return plan


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so ``exp`` cannot overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def adaptive_pool_matrix(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in) averaging matrix: row ``i`` averages inputs ``floor(i * n_in /
    n_out)`` to ``ceil((i + 1) * n_in / n_out) - 1`` (PyTorch's adaptive windows)."""
    i, j = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    start, stop = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    window = (j >= start) & (j < stop)                            # (n_out, n_in)
    return (window / window.sum(axis=1, keepdims=True)).astype(dtype)


def needs_specs(what: str) -> ValueError:
    """The error for asking a custom ``torch.nn.Module`` what only a network built from
    layer specs can tell or do."""
    return ValueError(f"{what} needs an architecture made of sklearn_cnn.layers specs; "
                      "this network is a custom torch.nn.Module")


@dataclass(frozen=True)
class TrainingConfig:
    """How a model's optimizer steps: the estimator's solver parameters, resolved.

    Batch size, data order, epochs and the learning rate of each batch are not here:
    the estimator decides them and hands a backend one epoch of ``Batch`` es.

    Parameters
    ----------
    solver : {"adam", "sgd"}, default="adam"
    learning_rate_init : float, default=0.01
    alpha : float, default=0.0001
        L2 penalty.
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        As the estimators' parameters of the same names.
    max_grad_norm : float or None, default=None
        Clip the global gradient norm to this.
    frozen_layers : int, default=0
        The first this many top-level layers are not trained.
    label_smoothing : float, default=0.0
        Share of the target spread evenly over the classes.
    loss : str, default="cross_entropy"
        One of :data:`LOSSES`.
    mixed_precision : {"bfloat16"} or None, default=None
        Train the forward pass under ``torch.autocast`` (torch backend).

    Examples
    --------
    >>> from sklearn_cnn.backends import TrainingConfig
    >>> config = TrainingConfig(solver="sgd", learning_rate_init=0.1)
    >>> config.solver, config.momentum, config.loss
    ('sgd', 0.9, 'cross_entropy')
    """

    solver: str = "adam"
    learning_rate_init: float = 0.01
    alpha: float = 0.0001
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    max_grad_norm: float | None = None  # clip the global gradient norm to this
    frozen_layers: int = 0  # the first this many top-level layers are not trained
    label_smoothing: float = 0.0  # share of the target spread evenly over the classes
    #: one of :data:`LOSSES`: "cross_entropy" (softmax over the outputs; ``Batch.y``
    #: holds class codes) or a
    #: regression loss, "squared_error", "huber" or "absolute_error" (``Batch.y``
    #: holds the standardized targets, (n, n_outputs))
    loss: str = "cross_entropy"
    #: None, or "bfloat16": the forward pass of training under torch.autocast
    mixed_precision: str | None = None


@dataclass
class Batch:
    """One mini-batch as the estimator hands it to a backend: images ``X``
    (n, C, H, W) in the model's dtype (already augmented), targets ``y`` (class codes
    (n,), or regression targets (n, n_outputs) in the model's dtype), per-sample
    weights (n,) or None (never all zero), and the learning rate of this step.

    In data-parallel training each process gets its share of a batch, and
    ``total_weight`` is the whole batch's (its size, or its total sample weight):
    the loss is a mean over the whole batch, so the processes' averaged gradients
    equal one process's on the whole batch. None: this is the whole batch."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    learning_rate: float
    total_weight: float | None = None


class Backend(ABC):
    """Builds, trains one epoch at a time and runs a network described by layer specs.

    A backend knows nothing of epochs, schedules, stopping or resuming: the
    estimator's loop (``sklearn_cnn._training``) decides those and calls
    :meth:`train_epoch` with the batches of one epoch. The model object a backend
    returns is opaque to the estimator; it is stored as ``model_`` and passed back.

    See Also
    --------
    get_backend : The backend of a name.
    sklearn_cnn._network.FittedNetwork : A model with its backend, as an estimator
        keeps it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.backends import Backend, get_backend
    >>> backend = get_backend("numpy")
    >>> isinstance(backend, Backend), backend.name
    (True, 'numpy')
    >>> X = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, np.arange(40) % 2)
    >>> clf.network_.backend is backend
    True
    >>> backend.predict_output(clf.model_, X[:3]).shape     # logits of 3 images
    (3, 2)
    """

    name: str
    #: whether :class:`TrainingConfig`'s ``mixed_precision`` can be honoured
    mixed_precision: bool = False

    @abstractmethod
    def build(self, specs: tuple[LayerSpec, ...], input_shape: Shape,
              weights: dict[str, np.ndarray], *, config: TrainingConfig | None = None,
              dtype=np.float32, device: str = "cpu") -> object:
        """A model with the given canonical weights, ready to predict and to train
        with ``config`` (a fresh optimizer; default ``TrainingConfig()``). ``dtype``
        (float32 or float64) is what it computes in; ``device`` is where it runs."""

    def build_module(self, module, input_shape: Shape, n_outputs: int, seed: int, *,
                     config: TrainingConfig, dtype=np.float32, device: str = "cpu") -> object:
        """A model from a user's own module (a ``torch.nn.Module`` subclass or
        instance); backends that cannot run one refuse it with a ValueError."""
        raise ValueError(f"arch given as a torch.nn.Module needs backend='torch'; got "
                         f"backend={self.name!r}")

    def device_for(self, device: str) -> str:
        """The device this backend runs a model on when ``device`` is asked for
        (where :meth:`build` would refuse it, the nearest it accepts)."""
        return device

    @abstractmethod
    def configure(self, model: object, config: TrainingConfig, keep_state: bool) -> None:
        """Prepare ``model`` to train with ``config``: the optimizer state is kept when
        ``keep_state`` and the optimizer's settings are unchanged, else made afresh."""

    @abstractmethod
    def train_epoch(self, model: object, batches: Iterable[Batch], seed: int,
                    batch_end: Callable[[float], None] | None = None) -> float:
        """One optimizer step per batch, in the order given; returns the epoch's mean
        training loss (L2 penalty included, batches weighted by their size).

        ``seed`` seeds the dropout masks of this epoch; ``batch_end(loss)``, if
        given, hears each batch's loss once it has been stepped (a progress bar).
        """

    def reads_ahead(self, model: object) -> bool:
        """Whether the next batch of images read batch by batch (a memory map, files)
        is best read on a worker thread while ``model`` trains on the current one;
        else it is read between steps."""
        return True

    def process_share(self, model: object) -> tuple[int, int]:
        """``(rank, world_size)``: which share of every batch this process trains
        (see :mod:`sklearn_cnn.distributed`); ``(0, 1)``, all of it, for a backend
        that trains in one process."""
        return 0, 1

    @abstractmethod
    def snapshot(self, model: object) -> object:
        """A copy of everything training changes (weights, buffers, optimizer state),
        in the model's own dtype, for :meth:`restore`."""

    @abstractmethod
    def restore(self, model: object, state: object) -> None:
        """Put ``model`` back exactly as it was when ``state`` was taken."""

    @abstractmethod
    def predict_output(self, model: object, X: np.ndarray) -> np.ndarray:
        """The network's output (N, n_outputs), float64, evaluation mode, batched:
        logits of a classifier, standardized predictions of a regressor. X is in the
        model's dtype, or ``uint8`` pixels converted pass by pass
        (``fixed_size_batch``)."""

    def predict_proba(self, model: object, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, n_classes): the softmax of the output."""
        return softmax(self.predict_output(model, X))

    @abstractmethod
    def forward(self, model: object, X: np.ndarray, key: str) -> np.ndarray:
        """Output of the layer ``key`` (``"3"``, or ``"2.body.1"`` inside a residual
        block) in evaluation mode, batched like ``predict_proba``."""

    @abstractmethod
    def gradient(self, model: object, X: np.ndarray, output_grad: np.ndarray,
                 key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(activation, gradient)``: the output of the top-level layer ``key`` (the
        images themselves when ``key`` is None) and the gradient of
        ``sum(outputs * output_grad)`` with respect to it, in evaluation mode, batched
        (``output_grad``: (N, n_outputs), one row per image). What the inspection
        maps are made of; the weights do not change."""

    @abstractmethod
    def get_weights(self, model: object) -> dict[str, np.ndarray]:
        """Canonical weights (NCHW / OIHW) of the model, copies in its own dtype."""

    @abstractmethod
    def set_weights(self, model: object, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights into the model, in place."""

    @abstractmethod
    def dtype(self, model: object) -> np.dtype:
        """The float type the model computes in."""

    def to_portable(self, model: object) -> object:
        """Everything of a model built from specs as NumPy arrays and plain Python
        values (weights, buffers, optimizer state, settings): what pickle and skops
        store. The default: the model itself, for a backend whose models are that."""
        return model

    def from_portable(self, specs: tuple[LayerSpec, ...], input_shape: Shape,
                      state: object) -> object:
        """The model :meth:`to_portable` described."""
        return state

    def portable_types(self) -> list[type]:
        """The classes :meth:`to_portable`'s values are made of, beside NumPy's and
        Python's own (the types a skops file of such a model must trust)."""
        return [TrainingConfig]


def same_optimizer(old: TrainingConfig | None, new: TrainingConfig) -> bool:
    """Whether an optimizer made for ``old`` can go on under ``new``: settings that act
    only through the loss or the learning rate may differ."""
    loss_only = {"learning_rate_init": 0.0, "alpha": 0.0, "max_grad_norm": None,
                 "label_smoothing": 0.0, "loss": "cross_entropy"}
    return old is not None and replace(old, **loss_only) == replace(new, **loss_only)


def mean_loss(losses: list[float], sizes: list[int]) -> float:
    """An epoch's loss: the batch losses weighted by the batch sizes."""
    total = sum(sizes)
    return sum(loss * size for loss, size in zip(losses, sizes, strict=True)) / max(total, 1)
