"""What happens between epochs, the same for every backend: learning-rate schedules
and the stopping rules of MLPClassifier (``tol``, ``n_iter_no_change``)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from .backends._base import EpochPlan


@dataclass
class Schedule:
    """The learning rate at every mini-batch.

    ``"constant"``: ``learning_rate_init``. ``"invscaling"``: ``learning_rate_init /
    t ** power_t`` with ``t`` the training samples seen before the epoch
    (MLPClassifier's rule: the first epoch runs at ``learning_rate_init``).
    ``"adaptive"``: constant while the monitored score keeps improving by ``tol``;
    divided by 5 after two epochs without (MLPClassifier's rule, down to 1e-6).
    ``"cosine"``: from ``learning_rate_init`` down to 0 along half a cosine over
    ``max_iter`` epochs. ``"onecycle"``: up from ``learning_rate_init / 25`` to
    ``learning_rate_init`` over the first 30 % of the batches, then down to
    ``learning_rate_init / 1e4`` along a cosine (Smith's one-cycle, as PyTorch's
    ``OneCycleLR`` defaults).
    """

    kind: str
    learning_rate_init: float
    max_iter: int
    power_t: float = 0.5
    tol: float = 1e-4
    current: float = field(init=False)
    _bad_epochs: int = field(default=0, init=False)
    _best: float = field(default=-math.inf, init=False)

    def __post_init__(self):
        self.current = self.learning_rate_init

    def lr(self, epoch: int, batch: int, n_batches: int, samples_seen: int) -> float:
        """Learning rate for ``batch`` (0-based) of ``epoch`` (0-based)."""
        progress = (epoch + batch / n_batches) / self.max_iter
        if self.kind == "invscaling":
            self.current = self.learning_rate_init / max(samples_seen, 1) ** self.power_t
        elif self.kind == "cosine":
            self.current = self.learning_rate_init * 0.5 * (1 + math.cos(math.pi * progress))
        elif self.kind == "onecycle":
            peak, warmup = self.learning_rate_init, 0.3
            if progress < warmup:
                start = peak / 25
                self.current = start + (peak - start) * 0.5 * (
                    1 - math.cos(math.pi * progress / warmup))
            else:
                end = peak / 25 / 1e4
                phase = (progress - warmup) / (1 - warmup)
                self.current = end + (peak - end) * 0.5 * (1 + math.cos(math.pi * phase))
        return self.current

    def end_epoch(self, score: float) -> None:
        """``score`` is higher-is-better (validation accuracy, or minus the loss)."""
        if self.kind != "adaptive":
            return
        if score > self._best + self.tol:
            self._best, self._bad_epochs = score, 0
            return
        self._bad_epochs += 1
        if self._bad_epochs > 1 and self.current > 1e-6:
            self.current /= 5
            self._bad_epochs = 0


@dataclass
class Stopper:
    """MLPClassifier's rule: stop after ``n_iter_no_change`` consecutive epochs in
    which the monitored score did not beat the best one by more than ``tol``."""

    tol: float
    n_iter_no_change: int
    best: float = -math.inf
    best_epoch: int = -1
    _no_improvement: int = 0

    def update(self, epoch: int, score: float) -> bool:
        """Record an epoch's higher-is-better score; True means stop now."""
        if score > self.best + self.tol:
            self._no_improvement = 0
        else:
            self._no_improvement += 1
        if score > self.best:
            self.best, self.best_epoch = score, epoch
        return self._no_improvement >= self.n_iter_no_change


def _diverged(loss: float, weights: dict, n_classes: int) -> bool:
    """A non-finite loss or weight, or a loss 100 times that of guessing uniformly
    (log n_classes): the network puts less than e^-230 on the true class of a
    10-class problem, which no converging run does."""
    if not np.isfinite(loss) or loss > 100 * max(math.log(n_classes), 1.0):
        return True
    return not all(np.isfinite(w).all() for w in weights.values())


@dataclass
class EpochRecord:
    """What one epoch produced."""

    loss: float
    validation_score: float | None
    learning_rate: float
    seconds: float


def progress_bar(n_batches: int, epoch: int):
    """A tqdm bar over one epoch's batches (``verbose=2``), or None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("verbose=2 draws a progress bar with tqdm, which is not installed "
                      "(pip install tqdm); showing one line per epoch instead.",
                      UserWarning, stacklevel=4)
        return None
    return tqdm(total=n_batches, desc=f"epoch {epoch}", unit="batch", leave=False)


def run_epochs(backend, model, X, y, sample_weight, config, *, epochs: int, seed: int,
               resume: bool, schedule: Schedule, stopper: Stopper | None,
               validation: tuple | None, augment, samples_seen: int,
               report: Callable[[int, EpochRecord], None] | None, progress: bool = False):
    """Train ``epochs`` epochs, one backend call each, applying the schedule, the
    augmentation, validation scoring and the stopping rule between them.

    Returns ``(model, records, stopped)``. With ``validation=(X_val, y_val)`` the
    weights of the best-scoring epoch are restored at the end. ``progress=True``
    shows a progress bar over each epoch's batches with the running loss.
    """
    records, best_weights, stopped = [], None, False
    last_good = backend.get_weights(model)
    for epoch in range(epochs):
        rng = np.random.default_rng(seed + epoch)
        bar = progress_bar(-(-len(X) // config.batch_size), epoch + 1) if progress else None
        if bar is None:
            progress = False

        def batch_end(loss, bar=bar):
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.update()

        plan = EpochPlan(
            learning_rate=lambda batch, n_batches, e=epoch, seen=samples_seen: schedule.lr(
                e, batch, n_batches, seen),
            augment=None if augment is None else (lambda x, rng=rng: augment(x, rng)),
            batch_end=batch_end if bar is not None else None)
        start = time.perf_counter()
        try:
            result = backend.fit(model, X, y, replace(config, max_iter=1),
                                 seed=seed + epoch, sample_weight=sample_weight,
                                 resume=resume or epoch > 0, plan=plan)
        except KeyboardInterrupt:  # Ctrl-C: keep what the completed epochs learned
            backend.set_weights(model, last_good)
            warnings.warn(f"Training interrupted during epoch {epoch + 1}; the estimator "
                          f"keeps the weights of the {epoch} completed epoch(s).",
                          UserWarning, stacklevel=3)
            return model, records, True
        finally:
            if bar is not None:
                bar.close()
        model, samples_seen = result.model, samples_seen + result.t
        loss = result.loss_curve[0]
        weights = backend.get_weights(model)
        if _diverged(loss, weights, n_classes=int(y.max()) + 1):
            backend.set_weights(model, last_good)
            warnings.warn(f"Training diverged at epoch {epoch + 1} (the loss became "
                          f"{loss}); stopped and kept the weights from before that epoch. "
                          "Try a smaller learning_rate_init.", ConvergenceWarning,
                          stacklevel=3)
            return model, records, True
        last_good = weights
        score = None
        if validation is not None:
            proba = backend.predict_proba(model, validation[0])
            score = float(np.mean(proba.argmax(axis=1) == validation[1]))
        records.append(EpochRecord(loss, score, schedule.current, time.perf_counter() - start))
        if report is not None:
            report(len(records), records[-1])
        monitored = -loss if score is None else score
        schedule.end_epoch(monitored)
        if stopper is not None:
            stopped = stopper.update(epoch, monitored)
            if validation is not None and stopper.best_epoch == epoch:
                best_weights = weights
            if stopped:
                break
    if best_weights is not None:
        backend.set_weights(model, best_weights)
    return model, records, stopped


def validation_split(images, codes, weights, fraction: float, seed: int):
    """Hold out a stratified ``fraction`` of the training data for early stopping.

    Returns ``(X_train, X_val, y_train, y_val, weights_train)``.
    """
    stratify = codes if np.bincount(codes).min() >= 2 else None
    parts = train_test_split(images, codes, *([] if weights is None else [weights]),
                             test_size=fraction, stratify=stratify,
                             random_state=seed % (2**31))
    if len(parts[0]) == 0 or len(parts[1]) == 0:
        raise ValueError("validation_fraction leaves no samples to train or validate "
                         f"on ({len(codes)} samples)")
    return (*parts[:4], parts[4] if weights is not None else None)
