"""The one epoch loop, the same for every backend.

The estimator calls :func:`run_epochs`; it decides everything between and around
the epochs: the batch order, the augmentations and the dropout seeds (all drawn from
one NumPy generator), the learning rate of every batch (:class:`Schedule`), the
stopping rules of MLPClassifier (:class:`Stopper`), early stopping on a validation
split with the best epoch restored, and the rollback on divergence or Ctrl-C. A
backend only runs the epoch it is handed (``Backend.train_epoch``).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._streaming import ImageStream, prefetched, take
from .backends._base import Backend, Batch


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


#: ``batch_size="auto"``: this many images a step on large sets; on small ones fewer,
#: so that an epoch has at least ``AUTO_MIN_STEPS`` steps, but no fewer than
#: ``AUTO_BATCH_RANGE[0]`` (or all the samples, when there are fewer)
AUTO_BATCH_RANGE, AUTO_MIN_STEPS = (32, 128), 40
#: ``max_iter="auto"``: enough epochs for about this many optimizer steps, within
#: these bounds: many epochs over a small set, fewer over a large one
AUTO_STEPS, AUTO_EPOCHS = 2500, (15, 50)


def auto_batch_size(batch_size: int | str, n_samples: int) -> int:
    """``batch_size`` (at most ``n_samples``), or with ``"auto"``: 128 from 5,120
    samples on, ``n_samples // 40`` below (35 on the 1,437 digits of a 5-fold split),
    and at least 32. A small set is then seen in more, smaller steps per epoch, at
    about the same cost per image."""
    if batch_size == "auto":
        low, high = AUTO_BATCH_RANGE
        batch_size = int(np.clip(n_samples // AUTO_MIN_STEPS, low, high))
    return min(int(batch_size), n_samples)


def auto_epochs(max_iter: int | str, n_samples: int, batch_size: int) -> int:
    """``max_iter``, or with ``"auto"`` the epochs that give about ``AUTO_STEPS``
    optimizer steps, clipped to ``AUTO_EPOCHS``: 50 on the 1,437 digits of a 5-fold
    split, 32 on 10,000 images, 15 on 60,000 (with ``auto_batch_size``)."""
    if max_iter != "auto":
        return int(max_iter)
    steps_per_epoch = -(-n_samples // batch_size)
    return int(np.clip(-(-AUTO_STEPS // steps_per_epoch), *AUTO_EPOCHS))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the user's line: the first frame
    outside this package and scikit-learn (whose wrappers, ``_fit_context`` and the
    callbacks', stand between a fit and the user)."""
    import sklearn

    inside = (os.path.dirname(os.path.dirname(__file__)) + os.sep,
              os.path.dirname(sklearn.__file__) + os.sep)
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        level, frame = level + 1, frame.f_back
    return level


def check_counts(sample_weight: np.ndarray, alpha: float) -> np.ndarray:
    """Sample weights as scikit-learn means them, counts: an integer weight trains as
    that many copies of the sample (the loss is a weighted mean, the L2 penalty is
    divided by a batch's total weight), so their scale matters only through
    ``alpha``. All zero is refused, as scikit-learn refuses it; weights whose mean is
    far below 1 with ``alpha > 0`` get a warning, since the penalty then outweighs
    the data by that factor."""
    largest = sample_weight.max(initial=0.0)
    if not largest > 0:
        raise ValueError("sample_weight is zero for every sample: there is nothing to "
                         "learn from; give some samples a positive weight")
    mean = (sample_weight / largest).mean() * largest  # no overflow on the way
    if alpha > 0 and mean < 1e-3:
        warnings.warn(f"sample_weight averages {mean:.3g}: weights count samples, so the "
                      f"L2 penalty alpha={alpha:g} weighs {1 / mean:.3g} times as much "
                      "against the data as with weights of 1; rescale the weights (only "
                      "their ratios and alpha matter)", UserWarning,
                      stacklevel=caller_stacklevel())
    return sample_weight


def one_fit_at_a_time(method):
    """Decorator: calls of ``method`` on one estimator run one at a time, a second
    thread waiting for the first. scikit-learn promises no thread safety for fits,
    but two threads training one network at once would corrupt it."""
    @functools.wraps(method)
    def locked(estimator, *args, **kwargs):
        with _LOCKS_GUARD:
            lock = _FIT_LOCKS.setdefault(estimator, threading.RLock())
        with lock:
            return method(estimator, *args, **kwargs)
    return locked


#: one lock per estimator object, gone with the estimator
_FIT_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _diverged(loss: float, weights: dict, baseline_loss: float) -> bool:
    """A non-finite loss or weight, or a loss 100 times that of an uninformed guess
    (``baseline_loss``, at least 1): with 10 classes, a network that puts less than
    e^-230 on the true class; for a regressor, outputs some 14 times further off
    than its targets' centre. No converging run does that."""
    if not np.isfinite(loss) or loss > 100 * max(baseline_loss, 1.0):
        return True
    return not all(np.isfinite(w).all() for w in weights.values())


@dataclass
class EpochRecord:
    """What one epoch produced."""

    loss: float
    validation_score: float | None
    learning_rate: float
    seconds: float


@dataclass(frozen=True)
class TrainingLog:
    """The training record the fitted attributes come from (``loss_curve_``,
    ``validation_scores_``, ``n_iter_``, ``t_``...)."""

    loss_curve: tuple[float, ...] = ()
    validation_scores: tuple[float, ...] | None = None
    t: int = 0

    @property
    def n_iter(self) -> int:
        return len(self.loss_curve)

    def extended(self, records: list[EpochRecord], n_samples: int,
                 validated: bool) -> TrainingLog:
        """This log followed by ``records`` (epochs of ``n_samples`` each);
        ``validated``: they were scored on a validation split (early stopping)."""
        scores = None
        if validated:
            scores = (*(self.validation_scores or ()),
                      *(r.validation_score for r in records))
        return TrainingLog((*self.loss_curve, *(r.loss for r in records)), scores,
                           self.t + n_samples * len(records))


@dataclass
class TrainingData:
    """The training set as the loop sees it: images in the model's dtype, targets
    (class codes, or standardized regression targets), sample weights (or None), and
    the loss of an uninformed guess (``log(n_classes)`` for uniform probabilities;
    for a regressor, the loss of predicting the targets' centre), which scales the
    divergence test."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    baseline_loss: float


def accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    """Validation score of a classifier: the share of argmax outputs equal to the
    class codes ``y``."""
    return float(np.mean(outputs.argmax(axis=1) == y))


@dataclass
class LoopSettings:
    """What the loop needs beyond the data: batching, augmentation, schedule, stopping,
    validation, progress."""

    batch_size: int
    shuffle: bool
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None
    schedule: Schedule
    epochs: int
    stopper: Stopper | None = None
    validation: tuple[np.ndarray, np.ndarray] | None = None
    #: higher-is-better score of the network's outputs on the validation targets
    score: Callable[[np.ndarray, np.ndarray], float] = accuracy
    report: Callable[[int, EpochRecord], None] | None = None
    progress: bool = False
    samples_seen: int = 0
    #: scikit-learn's callbacks: told an epoch begins; told it ended (with the records
    #: so far), answering whether to stop
    epoch_begin: Callable[[int], None] | None = None
    epoch_end: Callable[[list[EpochRecord]], bool] | None = None


def epoch_batches(data: TrainingData, settings: LoopSettings, epoch: int,
                  rng: np.random.Generator, share: tuple[int, int] = (0, 1)
                  ) -> Iterator[Batch]:
    """One epoch's mini-batches: order, augmentation and learning rate, all decided
    here (from ``rng``), so that every backend trains on the same batches.

    ``share``: ``(rank, world_size)`` of data-parallel training: this process reads
    and trains rows ``rank::world_size`` of every batch, and the batch carries the
    whole batch's weight. Every process draws the same numbers from ``rng`` (the
    augmentations of a batch from a generator of their own), so all draw the same
    batches in every epoch.
    """
    rank, world = share
    n = len(data.y)
    order = rng.permutation(n) if settings.shuffle else np.arange(n)
    n_batches = -(-n // settings.batch_size)
    for index in range(n_batches):
        rows = order[index * settings.batch_size:(index + 1) * settings.batch_size]
        total = len(rows) if data.sample_weight is None else data.sample_weight[rows].sum()
        rate = settings.schedule.lr(epoch, index, n_batches, settings.samples_seen)
        augment_rng = rng
        if world > 1 and settings.augment is not None:  # the same draws everywhere
            augment_rng = np.random.default_rng(rng.integers(2**62))
        if not total > 0:
            continue  # every sample weighted 0: a step would learn nothing
        if world > 1:
            rows = rows[rank::world]
        X = data.X[rows]
        if settings.augment is not None:
            X = np.ascontiguousarray(settings.augment(X, augment_rng))
        weights = None if data.sample_weight is None else data.sample_weight[rows]
        yield Batch(X, data.y[rows], weights, rate,
                    total_weight=float(total) if world > 1 else None)


def progress_bar(n_batches: int, epoch: int):
    """A tqdm bar over one epoch's batches (``verbose=2``), or None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("verbose=2 draws a progress bar with tqdm, which is not installed "
                      "(pip install tqdm); showing one line per epoch instead.",
                      UserWarning, stacklevel=caller_stacklevel())
        return None
    return tqdm(total=n_batches, desc=f"epoch {epoch}", unit="batch", leave=False)


def _train_one_epoch(backend: Backend, model, data: TrainingData, settings: LoopSettings,
                     epoch: int, rng: np.random.Generator) -> float:
    """The backend's epoch over this loop's batches (with a progress bar if asked)."""
    seed = int(rng.integers(2**62))  # the epoch's dropout masks
    batches = epoch_batches(data, settings, epoch, rng, backend.process_share(model))
    if isinstance(data.X, ImageStream) and backend.reads_ahead(model):
        batches = prefetched(batches)  # the next batch read while this one trains
    bar = progress_bar(-(-len(data.y) // settings.batch_size), epoch + 1) \
        if settings.progress else None
    with closing(batches):
        if bar is None:
            return backend.train_epoch(model, batches, seed)

        def batch_end(loss):
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.update()

        try:
            return backend.train_epoch(model, batches, seed, batch_end)
        finally:
            bar.close()


def run_epochs(backend: Backend, model, data: TrainingData, settings: LoopSettings,
               rng: np.random.Generator) -> tuple[list[EpochRecord], bool]:
    """Train up to ``settings.epochs`` epochs of ``model`` in place.

    Between epochs: validation scoring, the schedule's end-of-epoch rule and the
    stopping rule. A diverging epoch, or Ctrl-C at any point of an epoch, puts the
    model back as it was after the last completed epoch (with a warning) and ends
    training; with a validation split, the best epoch's state is restored at the end.
    Any other exception propagates (the caller restores the model).

    Returns ``(records, stopped)``: one record per completed epoch, and whether a
    stopping rule (or divergence, or Ctrl-C) ended training before ``epochs``.
    """
    records: list[EpochRecord] = []
    last_good, best_weights, stopped = backend.snapshot(model), None, False
    for epoch in range(settings.epochs):
        start = time.perf_counter()
        if settings.epoch_begin is not None:
            settings.epoch_begin(epoch)
        try:
            loss = _train_one_epoch(backend, model, data, settings, epoch, rng)
            weights = backend.get_weights(model)
            if _diverged(loss, weights, data.baseline_loss):
                backend.restore(model, last_good)
                warnings.warn(f"Training diverged at epoch {epoch + 1} (the loss became "
                              f"{loss}); stopped and kept the weights from before that "
                              "epoch. Try a smaller learning_rate_init.", ConvergenceWarning,
                              stacklevel=caller_stacklevel())
                return records, True
            score = None
            if settings.validation is not None:
                X_val, y_val = settings.validation
                score = settings.score(backend.predict_output(model, X_val), y_val)
            record = EpochRecord(loss, score, settings.schedule.current,
                                 time.perf_counter() - start)
            if settings.report is not None:
                settings.report(len(records) + 1, record)
        except KeyboardInterrupt:  # Ctrl-C: keep what the completed epochs learned
            backend.restore(model, last_good)
            warnings.warn(f"Training interrupted during epoch {epoch + 1}; the estimator "
                          f"keeps the weights of the {epoch} completed epoch(s).",
                          UserWarning, stacklevel=caller_stacklevel())
            return records, True
        records.append(record)
        settings.samples_seen += len(data.y)
        last_good = backend.snapshot(model)
        asked_to_stop = settings.epoch_end is not None and settings.epoch_end(records)
        monitored = -loss if score is None else score
        settings.schedule.end_epoch(monitored)
        if settings.stopper is not None:
            stopped = settings.stopper.update(epoch, monitored)
            if settings.validation is not None and settings.stopper.best_epoch == epoch:
                best_weights = weights
            if stopped:
                break
        if asked_to_stop:  # a callback's request
            stopped = True
            break
    if best_weights is not None:  # early stopping: the best epoch's weights
        backend.set_weights(model, best_weights)
    return records, stopped


def validation_split(images, codes, weights, fraction: float, seed: int,
                     stratified: bool = True):
    """Hold out a ``fraction`` of the training data for early stopping, stratified by
    class when ``stratified`` (classifiers), every class has two samples and both
    parts are large enough to hold every class; otherwise a plain shuffled split (60
    digits of 10 classes hold out 6 images: too few to stratify, as MLPClassifier,
    which never stratifies several classes, would not either).

    Returns ``(X_train, X_val, y_train, y_val, weights_train)``.
    """
    n_val = math.ceil(fraction * len(codes))  # as train_test_split rounds it
    n_classes = len(np.unique(codes))
    stratify = codes if (stratified and np.bincount(codes).min() >= 2
                         and min(n_val, len(codes) - n_val) >= n_classes) else None
    train, val, *parts = train_test_split(
        np.arange(len(codes)), codes, *([] if weights is None else [weights]),
        test_size=fraction, stratify=stratify, random_state=seed % (2**31))
    if len(train) == 0 or len(val) == 0:
        raise ValueError("early_stopping=True: validation_fraction leaves no samples to "
                         f"train or validate on ({len(codes)} samples); raise "
                         "validation_fraction or pass more samples")
    # by index, so that images read batch by batch stay unread
    return (take(images, train), take(images, val), *parts[:2],
            parts[2] if weights is not None else None)
