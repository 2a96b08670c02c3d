"""The interface every backend implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..layers import LayerSpec, Shape


def predict_batch_size(image_shape: tuple[int, ...], values: int = 2**20) -> int:
    """Images per forward pass at prediction time, from the image size alone.

    About ``values`` input values per pass (activations grow with them), a power of
    two between 8 and 512: with a million, 512 for 28x28, 256 for 3x32x32, 8 for
    3x224x224. The NumPy backend asks for 2**17 (128 images of 28x28): its
    im2col columns then stay small enough to be reused from the cache.
    """
    per_image = math.prod(image_shape)
    return int(min(512, max(8, 2 ** math.floor(math.log2(max(1, values // per_image))))))


def fixed_size_batches(X: np.ndarray, values: int = 2**20
                       ) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(batch, n_real)``: every batch has exactly ``predict_batch_size`` images,
    the last one padded with zero images.

    Matrix-product libraries pick their summation order by matrix shape, so in
    float32 an image's scores would change (by ~1e-7) with the number of images
    predicted alongside it. With one fixed shape, a sample's prediction is the same
    bit for bit whatever else is in X, and memory stays bounded on large inputs.
    """
    size = predict_batch_size(X.shape[1:], values)
    for begin in range(0, len(X), size):
        batch = X[begin:begin + size]
        n_real = len(batch)
        if n_real < size:
            padding = np.zeros((size - n_real, *X.shape[1:]), dtype=X.dtype)
            batch = np.concatenate([batch, padding])
        yield batch, n_real


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: the estimator's solver parameters, resolved and validated."""

    solver: str = "adam"
    learning_rate_init: float = 0.001
    alpha: float = 0.0001
    batch_size: int = 200
    max_iter: int = 10
    shuffle: bool = True
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    device: str = "cpu"
    max_grad_norm: float | None = None  # clip the global gradient norm to this
    frozen_layers: int = 0  # the first this many top-level layers are not trained


@dataclass
class EpochPlan:
    """Per-batch hooks of one training call (all optional).

    ``learning_rate(batch, n_batches)`` gives the step size for batch ``batch``
    (0-based) of the epoch; ``augment(X_batch)`` returns a changed training batch;
    ``batch_end(loss)`` hears each training batch's loss once it has been stepped
    (a progress bar).
    """

    learning_rate: Callable[[int, int], float] | None = None
    augment: Callable[[np.ndarray], np.ndarray] | None = None
    batch_end: Callable[[float], None] | None = None


@dataclass
class FitResult:
    """What a training run reports back to the estimator."""

    loss_curve: list[float]
    t: int  # training samples seen
    model: object = None  # the trained model, if the backend made a new one


class Backend(ABC):
    """Builds, trains and runs a network described by layer specs.

    The model object a backend returns is opaque to the estimator; it is stored as
    the fitted attribute ``model_`` and passed back to the other methods.
    """

    name: str

    @abstractmethod
    def build(self, specs: tuple[LayerSpec, ...], input_shape: Shape,
              weights: dict[str, np.ndarray], seed: int, device: str = "cpu",
              dtype=np.float32) -> object:
        """A ready-to-predict model with the given canonical weights.

        ``seed`` drives dropout masks; ``device`` is where it runs; ``dtype``
        (float32 or float64) is what it computes in: fit and predict receive X in it.
        """

    @abstractmethod
    def fit(self, model: object, X: np.ndarray, y: np.ndarray, config: TrainingConfig,
            seed: int, sample_weight: np.ndarray | None = None, resume: bool = False,
            plan: EpochPlan | None = None) -> FitResult:
        """Train on images X (N, C, H, W) float32 and class codes y (N,).

        ``sample_weight`` (N,) weights each sample's loss (weighted mean per batch;
        the L2 penalty is divided by the batch's total weight). ``resume=True``
        keeps the optimizer state of the previous call (``partial_fit``). ``plan``
        sets the learning rate and augments each batch.
        ``FitResult.model`` is the trained model (``model`` itself, trained in
        place, or a new object wrapping the same network).
        """

    @abstractmethod
    def predict_proba(self, model: object, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, n_classes), float64, evaluation mode, batched."""

    @abstractmethod
    def features(self, model: object, X: np.ndarray) -> np.ndarray:
        """Input of the last layer (the penultimate features), (N, F), evaluation
        mode, batched like ``predict_proba``."""

    @abstractmethod
    def get_weights(self, model: object) -> dict[str, np.ndarray]:
        """Canonical weights (NCHW / OIHW, float32) of the model."""

    @abstractmethod
    def set_weights(self, model: object, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights into the model, in place."""

    @abstractmethod
    def dtype(self, model: object) -> np.dtype:
        """The float type the model computes in."""
