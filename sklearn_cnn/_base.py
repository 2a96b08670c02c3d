"""The shared estimator: everything CNNClassifier and CNNRegressor do alike.

As scikit-learn's ``BaseMultilayerPerceptron`` is to MLPClassifier and MLPRegressor:
input validation, the network's construction, the one training loop, resuming,
the fitted state, transform, summary, weights, saving and backend moves live
here. A subclass says only what is particular to its targets:

- ``_encode_targets(y, resume, classes)``: y checked and turned into what the
  network trains on (class codes, or standardized targets), and the fitted target
  attributes (``classes_``, or ``n_outputs_`` and the standardization);
- ``_training_loss()``: the :class:`~sklearn_cnn.backends.TrainingConfig` loss
  and label smoothing;
- ``_validation_score(outputs, y)``: what early stopping watches (accuracy, R^2);
- ``_fitted_targets()``: the current target attributes, for copies;
- the prediction methods, which turn the network's outputs into labels or values.
"""

from __future__ import annotations

import math
import os
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import TransformerTags, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names,
    _check_sample_weight,
    _get_feature_names,
    check_consistent_length,
    check_is_fitted,
)

from . import augment as augmentations
from ._callbacks import CallbackSupportMixin, FitCallbacks, fitted_attributes, with_callbacks
from ._fitting import (
    is_fitted_source,
    new_network,
    print_epoch,
    training_config,
    unfitted_summary,
)
from ._format import save
from ._input import as_numpy, warn_if_unscaled
from ._network import FittedNetwork, refuse_file_paths
from ._streaming import as_images, first_rows, transformed
from ._training import (
    LoopSettings,
    Schedule,
    Stopper,
    TrainingData,
    TrainingLog,
    auto_batch_size,
    auto_epochs,
    caller_stacklevel,
    check_counts,
    one_fit_at_a_time,
    run_epochs,
    validation_split,
)
from .architectures._blocks import ACTIVATIONS, POOLS
from .backends import TrainingConfig, get_backend
from .summary import Summary


class BaseCNN(CallbackSupportMixin, TransformerMixin, BaseEstimator):
    """Base class of :class:`CNNClassifier` and :class:`CNNRegressor`; not for direct use."""

    _parameter_constraints: ClassVar[dict] = {
        "arch": "no_validation",  # a name, specs or a torch module: checked in fit
        "backend": [str],
        "input_shape": ["array-like", None],
        "channels": [StrOptions({"auto", "first", "last"})],
        "solver": [StrOptions({"adam", "sgd"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "shuffle": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions({"cpu", "auto"}), str],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "cosine",
                                      "onecycle"})],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "augment": [StrOptions(set(augmentations.AUGMENTATIONS)), callable, list, tuple,
                    None],
        "test_time_augment": [StrOptions(set(augmentations.TEST_TIME_AUGMENTATIONS)), None],
        "mixed_precision": [StrOptions({"bfloat16"}), None],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "init_from": [HasMethods(["get_weights"]), str, os.PathLike, None],
        "pretrained": ["boolean"],
        "weights": [str, os.PathLike, None],
        "freeze": [StrOptions({"features"}), Interval(Integral, 0, None, closed="left"),
                   None],
        "warm_start": ["boolean"],
        "filters": ["array-like", Interval(Integral, 1, None, closed="left"), None],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_units": ["array-like", Interval(Integral, 1, None, closed="left"), None],
        "activation": [StrOptions(set(ACTIVATIONS)), None],
        "pooling": [StrOptions(set(POOLS)), None],
        "dropout": [Interval(Real, 0, 1, closed="left"), None],
        "batch_norm": ["boolean", None],
        "width": [Interval(Real, 0, None, closed="neither"), None],
    }

    def _store_parameters(self, params: dict) -> None:
        """``__init__``'s arguments as attributes of the same names, and nothing else
        (scikit-learn's rule: validation happens in ``fit``)."""
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Build the network for X's image shape and train it on (X, y).

        With ``warm_start=True`` and a fitted estimator, training continues from the
        current weights and optimizer state for ``max_iter`` more epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W), (n_samples, C, H, W), \
(n_samples, H, W, C) or (n_samples, F)
            Training images.
        y : array-like of shape (n_samples,), or (n_samples, n_outputs) for a regressor
            Class labels of any type (ints, strings, bools) for a classifier; target
            values (numbers) for a regressor.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights: the loss of a mini-batch is the weighted mean of its
            samples' losses, and the L2 penalty is divided by the batch's total
            weight, so an integer weight counts a sample that many times.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, partial=False)

    # -- what a subclass says about its targets --------------------------------------

    def _encode_targets(self, y, images, sample_weight, resume: bool, classes
                        ) -> tuple[np.ndarray, dict, np.ndarray | None]:
        """``(encoded, targets, sample_weight)``: y checked (one target per image) and
        turned into what the network trains on, the fitted target attributes (checked
        against the fitted ones when ``resume``), and the sample weights of training
        (``sample_weight`` checked with :meth:`_sample_weight`, then adjusted)."""
        raise NotImplementedError

    def _training_loss(self) -> dict:
        """The ``loss`` and ``label_smoothing`` of the :class:`TrainingConfig`."""
        raise NotImplementedError

    def _validation_score(self, outputs: np.ndarray, y: np.ndarray) -> float:
        """Higher-is-better score of the network's outputs on encoded targets."""
        raise NotImplementedError

    def _fitted_targets(self) -> dict:
        """The fitted target attributes, as ``_encode_targets`` made them."""
        raise NotImplementedError

    @staticmethod
    def _n_outputs(targets: dict) -> int:
        """Width of the network's output layer for these target attributes."""
        raise NotImplementedError

    def _baseline_loss(self, encoded: np.ndarray, sample_weight) -> float:
        """The training loss of an uninformed guess on these encoded targets (the
        divergence test's yardstick)."""
        raise NotImplementedError

    # -- training ----------------------------------------------------------------------

    @one_fit_at_a_time
    @with_callbacks
    def _fit(self, X, y, sample_weight, partial: bool, classes=None):
        """Validate everything, train, then set the fitted state in one step: a call
        that fails leaves the estimator exactly as it was."""
        backend = get_backend(self.backend)
        if self.mixed_precision is not None and not backend.mixed_precision:
            raise ValueError(f"mixed_precision={self.mixed_precision!r} is a torch "
                             f"backend option; use backend='torch' or "
                             f"mixed_precision=None (backend={self.backend!r})")
        resume = hasattr(self, "network_") and (partial or self.warm_start)
        fitted = self.network_ if resume else None
        if resume and fitted.specs is None and backend is not fitted.backend:
            raise ValueError(f"this estimator was fitted with backend="
                             f"{fitted.backend_name!r} on a custom torch.nn.Module, which "
                             f"cannot move to backend={self.backend!r}")
        refuse_file_paths(X, type(self).__name__)
        images = as_images(X, input_shape=self.input_shape, channels=self.channels,
                           dtype=fitted.dtype if resume else None)
        if resume:
            fitted.check_image_shape(images, type(self).__name__)
            _check_feature_names(self, X, reset=False)
        warn_if_unscaled(first_rows(images))
        encoded, targets, sample_weight = self._encode_targets(
            as_numpy(y, "y"), images, as_numpy(sample_weight, "sample_weight"), resume,
            classes)
        if encoded.dtype.kind == "f":
            encoded = encoded.astype(images.dtype)
        init_seed, train_seed = check_random_state(self.random_state).randint(
            0, 2**31 - 1, size=2)
        if resume:
            network, log = self._resumed_network(backend), self._log()
        else:
            network = new_network(self, backend, images.shape[1:], images.dtype,
                                  self._n_outputs(targets), init_seed, self._training_config)
            log = TrainingLog()
        rollback = backend.snapshot(network.model) if resume else None
        try:
            records, stopped, epochs, callbacks = self._run_epochs(
                backend, network,
                TrainingData(images, encoded, sample_weight,
                             self._baseline_loss(encoded, sample_weight)),
                partial, log, train_seed, (X, y, targets))
        except BaseException:
            if rollback is not None:  # nothing of a failed call stays behind
                backend.restore(network.model, rollback)
            raise
        early = self.early_stopping and not partial
        self._set_fitted(network, log.extended(records, len(encoded), early),
                         targets=targets, feature_names=_get_feature_names(X))
        callbacks.end()
        # cosine and one-cycle plan their decay to end at the last epoch: reaching it is
        # the plan, not a failure to converge
        open_ended = self.learning_rate in ("constant", "invscaling", "adaptive")
        if not partial and open_ended and not stopped and len(records) == epochs:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({epochs}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning, stacklevel=caller_stacklevel())
        return self

    def _run_epochs(self, backend, network, data: TrainingData, partial, log, seed, given):
        """The epochs of this call (one for partial_fit), through the one loop, with
        scikit-learn's callbacks told of each (``given``: the call's X, y and targets)."""
        early, n_given = self.early_stopping and not partial, len(data.y)
        validation = None
        if early:
            X, X_val, y, y_val, sample_weight = validation_split(
                data.X, data.y, data.sample_weight, float(self.validation_fraction), seed,
                stratified=is_classifier(self))
            data = TrainingData(X, y, sample_weight, data.baseline_loss)
            validation = (X_val, y_val)
        n_samples = len(data.y)
        batch_size = auto_batch_size(self.batch_size, n_samples)
        epochs = 1 if partial else auto_epochs(self.max_iter, n_samples, batch_size)
        X, y, targets = given
        callbacks = FitCallbacks(self, epochs, X, y, lambda records: fitted_attributes(
            self, lambda copy: copy._set_fitted(
                network, log.extended(records, n_given, early), targets=targets,
                feature_names=_get_feature_names(X))))
        settings = LoopSettings(
            batch_size=batch_size, shuffle=self.shuffle,
            augment=augmentations.resolve(self.augment),
            # Python numbers: a NumPy float16 from a grid would keep the schedule's
            # arithmetic in float16
            schedule=Schedule("constant" if partial else self.learning_rate,
                              float(self.learning_rate_init), epochs, float(self.power_t),
                              float(self.tol)),
            epochs=epochs,
            stopper=None if partial else Stopper(float(self.tol), int(self.n_iter_no_change)),
            validation=validation, score=self._validation_score,
            report=print_epoch if self.verbose else None,
            progress=self.verbose >= 2, samples_seen=log.t,
            epoch_begin=callbacks.epoch_begin, epoch_end=callbacks.epoch_end)
        # one generator for the batch order, the augmentations and the dropout seeds;
        # a later partial_fit or warm fit draws a new stream
        rng = np.random.default_rng([int(seed), log.n_iter])
        return (*run_epochs(backend, network.model, data, settings, rng), epochs, callbacks)

    def _resumed_network(self, backend) -> FittedNetwork:
        """The fitted network, configured to go on training with the current
        parameters; moved to another backend (``set_params(backend=...)`` since) with
        a fresh optimizer. The fitted network itself is changed only by training."""
        config = self._training_config(self.specs_)
        if backend is not self.network_.backend:
            return self.network_.to(backend, config=config, device=self.device)
        self.network_.configure(config, keep_state=True)
        return self.network_

    def _set_fitted(self, network: FittedNetwork, log: TrainingLog, *, targets: dict,
                    feature_names) -> None:
        """Set every fitted attribute: the one place that does (fit, partial_fit and
        to_backend come here; a model file or a pickle restores what it set).
        ``targets``: the subclass's target attributes, by name."""
        for name, value in targets.items():
            setattr(self, name, value)
        self.network_ = network
        self.n_features_in_ = math.prod(network.input_shape)
        self.loss_curve_ = list(log.loss_curve)
        self.n_iter_, self.t_ = log.n_iter, log.t
        scores = log.validation_scores
        self.validation_scores_ = None if scores is None else list(scores)
        self.best_validation_score_ = max(scores) if scores else None
        self.best_loss_ = min(self.loss_curve_, default=None) if scores is None else None
        self.__dict__.pop("feature_names_in_", None)
        if feature_names is not None:
            self.feature_names_in_ = feature_names

    # the network's description, as attributes of their own
    model_ = property(lambda self: self.network_.model,
                      doc="The backend's model (``network_.model``).")
    specs_ = property(lambda self: self.network_.specs,
                      doc="The network's layer specs (None for a custom torch module).")
    input_shape_ = property(lambda self: self.network_.input_shape,
                            doc="``(C, H, W)`` of the images the network was built for.")

    def _log(self) -> TrainingLog:
        """The fitted training record, as :class:`TrainingLog`."""
        scores = self.validation_scores_
        return TrainingLog(tuple(self.loss_curve_), None if scores is None else tuple(scores),
                       self.t_)

    def _sample_weight(self, sample_weight, images) -> np.ndarray | None:
        """``sample_weight`` checked (finite, non-negative, one per image, not all zero:
        :func:`check_counts`), or None."""
        if sample_weight is None:
            return None
        return check_counts(_check_sample_weight(sample_weight, images, dtype=np.float64,
                                                 ensure_non_negative=True), self.alpha)

    def _training_config(self, specs) -> TrainingConfig:
        return training_config(self, specs, **self._training_loss())

    def __sklearn_clone__(self):
        """scikit-learn's clone, except that a fitted ``init_from`` is shared, not
        cloned: a clone of it would arrive unfitted (so ``GridSearchCV`` can search
        around a fitted source as it is)."""
        copy = super().__sklearn_clone__()
        if is_fitted_source(self.init_from):
            copy.init_from = self.init_from
        return copy

    # -- prediction --------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform() returns the penultimate features, so it is a transformer too
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        tags.input_tags.three_d_array = True  # images (n, H, W) and (n, C, H, W)
        return tags

    def _images(self, X, keep_pixels: bool = False) -> np.ndarray:
        """X validated as images of the fitted shape (see ``FittedNetwork.images``)."""
        check_is_fitted(self)
        _check_feature_names(self, X, reset=False)
        return self.network_.images(X, channels=self.channels, input_shape=self.input_shape,
                                    owner=type(self).__name__, keep_pixels=keep_pixels)

    def _score_inputs(self, X, y, sample_weight, check_y):
        """``(outputs, y, sample_weight)`` for ``score``: X, y (``check_y(y)``) and
        sample_weight all checked before the network runs."""
        images = self._images(X, keep_pixels=True)
        y, sample_weight = check_y(as_numpy(y, "y")), as_numpy(sample_weight, "sample_weight")
        check_consistent_length(images, y, sample_weight)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, images)
        return self._predicted(images), y, sample_weight

    def _link(self, outputs: np.ndarray) -> np.ndarray:
        """What the network's outputs are averaged as: themselves here (a classifier:
        their probabilities)."""
        return outputs

    def _predicted(self, images) -> np.ndarray:
        """What ``predict`` reads, for validated images: ``_link`` of the network's
        outputs, averaged with that of the changed copies ``test_time_augment`` asks
        for (``augment.prediction_views``)."""
        predicted = self._link(self.network_.outputs(images))
        views = augmentations.prediction_views(self.test_time_augment, self.input_shape_[1:])
        for view in views:
            predicted += self._link(self.network_.outputs(transformed(images, view)))
        return predicted / (1 + len(views)) if views else predicted

    @property
    def _n_features_out(self) -> int:
        """Width of :meth:`transform`'s output (``get_feature_names_out`` names
        them ``cnnclassifier0``, ``cnnclassifier1``...)."""
        self.network_.require_specs("get_feature_names_out()")
        return math.prod(self.network_.shape_after(len(self.specs_) - 1))

    def fit_transform(self, X, y, sample_weight=None) -> np.ndarray:
        """Fit, then return the penultimate features of X (see :meth:`transform`)."""
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    def transform(self, X) -> np.ndarray:
        """The penultimate layer's output: the features the last layer maps to the
        targets.

        Lets a fitted CNN feed another estimator (a LogisticRegression, say) in a
        Pipeline, or be inspected.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            For LeNet, the 84 activations before the output layer.
        """
        images = self._images(X)
        self.network_.require_specs("transform()")
        penultimate = len(self.specs_) - 2
        return self.network_.forward(images, penultimate).reshape(len(images), -1)

    # -- the fitted network ------------------------------------------------------------

    def summary(self) -> Summary:
        """Layer table of the network: output shapes and parameter counts.

        Fitted, the fitted network's. Not fitted, with ``input_shape`` given, the
        network ``fit`` would build for such images, with 10 outputs for a classifier
        and 1 for a regressor (``fit`` takes the number from y; a note says so), as
        :func:`sklearn_cnn.summary` does. Not fitted and without ``input_shape``, a
        NotFittedError.
        """
        if not hasattr(self, "network_"):
            return unfitted_summary(self)
        return self.network_.summary()

    def save(self, path) -> None:
        """Write the fitted estimator to ``path`` as an ``.npz`` file: weights as
        plain arrays and a JSON description, loadable with
        :func:`sklearn_cnn.load` without unpickling (so without running code)."""
        save(self, path)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights of the fitted network, by layer key.

        Returns
        -------
        dict of str to ndarray
            ``"<layer>.<name>"`` -> array in the network's own dtype (float32, or
            float64 when it was fitted on float64 images): OIHW convolution kernels,
            ``(out, in)`` dense matrices, BatchNorm running statistics included.
            The same keys on every backend.
        """
        check_is_fitted(self)
        return self.network_.get_weights()

    def to_backend(self, backend: str):
        """A fitted copy of this estimator running on another backend.

        The copy has identical weights (BatchNorm running statistics included), so
        it predicts the same values up to rounding: train with PyTorch, serve with
        NumPy only.

        Parameters
        ----------
        backend : {"numpy", "torch"}

        Returns
        -------
        estimator
            A new, fitted estimator of the same class with ``backend=backend``; this
            one is unchanged.
        """
        check_is_fitted(self)
        self.network_.require_specs("to_backend()")
        target = get_backend(backend)
        device = target.device_for(self.device)
        copy = clone(self).set_params(backend=backend, device=device)
        network = self.network_.to(target, config=copy._training_config(self.specs_),
                                   device=device)
        copy._set_fitted(network, self._log(), targets=self._fitted_targets(),
                         feature_names=getattr(self, "feature_names_in_", None))
        return copy
