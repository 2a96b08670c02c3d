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
- ``_fitted_targets()``: the current target attributes, for copies and files;
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
from ._fitting import (
    arch_params,
    build_specs,
    frozen_layers,
    initial_weights,
    is_torch_module,
    print_epoch,
)
from ._input import to_images, warn_if_unscaled
from ._training import (
    History,
    LoopSettings,
    Schedule,
    Stopper,
    TrainingData,
    auto_batch_size,
    auto_epochs,
    run_epochs,
    validation_split,
)
from .architectures._blocks import ACTIVATIONS, POOLS
from .backends import TrainingConfig, get_backend
from .layers import to_python
from .summary import Summary, summarize_specs

#: the parameters both estimators take, documented once (``%(name)s`` in a class
#: docstring is replaced by the entry ``name`` of this table)
PARAMETER_DOCS = {
    "network": """\
    backend : {"numpy", "torch"}, default="numpy"
        What trains and runs the network: ``"numpy"``, written from scratch with no
        other dependency, or ``"torch"``, PyTorch through skorch (``pip install
        'sklearn-cnn[torch]'``). Both build the same network from the same specs
        and start from the same initial weights for the same ``random_state``.
    input_shape : tuple of int, default=None
        ``(C, H, W)`` (or ``(H, W)``) of one image. Needed to read flat ``(n, F)``
        input as images when ``F`` is not a square (rows of fewer than 64 values
        are read as one ``1 x F`` row of features); checked against image input.
    channels : {"auto", "first", "last"}, default="auto"
        Where the channel axis of 4-D input is. ``"auto"`` takes the last axis as
        channels when it has 1, 3 or 4 entries and the second axis has not.""",
    "optimizer": """\
    solver : {"adam", "sgd"}, default="adam"
        ``"sgd"`` uses ``momentum`` and ``nesterovs_momentum``.
    learning_rate_init : float, default=0.01
        Step size (with ``learning_rate="onecycle"``, the peak step size).
    alpha : float, default=0.0001
        L2 penalty on convolution and dense weights, added to the loss as
        ``0.5 * alpha * ||W||^2 / batch_size`` (as in the MLP estimators).
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"``: 128 images, fewer on small sets so that an
        epoch has at least 40 steps (``n_samples // 40``, at least 32, at most
        ``n_samples``): 35 on 1,437 digits.
    max_iter : int or "auto", default="auto"
        Number of epochs (passes over the training data). ``"auto"``: enough for
        about 2,500 optimizer steps, at least 15 and at most 50 epochs (50 on the
        1,797 digits, 32 on 10,000 images, 15 on 60,000).
    shuffle : bool, default=True
        Reshuffle the training data every epoch.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with SGD.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's moment decay rates and numerical guard.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, data order and dropout.
    verbose : int, default=0
        1 prints the network's summary, then one table row per epoch (epoch,
        training loss, validation score, learning rate, seconds); 2 adds a tqdm
        progress bar over each epoch's batches with the running loss (on stderr).
    warm_start : bool, default=False
        When True, ``fit`` continues from the fitted weights and optimizer state
        instead of starting afresh (same targets and image shape required). Unlike
        the MLP estimators, which restart their optimizer, a warm fit picks up where
        the last one stopped, as ``partial_fit`` does.
    learning_rate : {"constant", "invscaling", "adaptive", "cosine", "onecycle"}, \
default="onecycle"
        Learning-rate schedule over the epochs of ``fit`` (``partial_fit`` uses
        ``learning_rate_init``): the MLP estimators' three, plus a cosine decay to 0
        and Smith's one-cycle (warm-up to ``learning_rate_init`` over 30 % of the
        batches, then cosine decay), both updated every batch. Cosine and one-cycle
        plan to end at ``max_iter``, so reaching it raises no ConvergenceWarning.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.""",
    "stopping": """\
    n_iter_no_change : int, default=10
        Training stops after this many epochs without progress; if ``max_iter`` is
        reached first, a ConvergenceWarning says so (as in the MLP estimators).
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping (only with
        ``early_stopping=True``).""",
    "transfer": """\
    max_grad_norm : float, default=None
        Clip the global L2 norm of the gradients to this before each update.
    init_from : fitted estimator, FrozenEstimator, str or path-like, default=None
        Start from this model's weights for every layer whose key and shape match
        (the others start fresh): fine-tune a trained network on new targets or
        data, on either backend (train with torch, fine-tune with NumPy); a
        classifier's convolutions can start a regressor. Inside ``GridSearchCV``
        (which clones parameters, so a fitted model arrives unfitted) pass
        ``sklearn.frozen.FrozenEstimator(model)`` or the path of a file written by
        :meth:`save`.
    pretrained : bool, default=False
        Start from torchvision's ImageNet weights (``arch`` in ``"alexnet"``,
        ``"resnet18"``, ``"resnet34"``, ``"vgg11"``, ``"vgg16"``; VGG with
        ``batch_norm=True`` loads the ``_bn`` weights). The network is then
        torchvision's exact ImageNet form; the weights file is read from the torch
        hub cache (never downloaded), a missing one raises an error saying where it
        was looked for and how to get it. The output layer is replaced for the
        targets of ``y``; grayscale images work as if repeated to 3 channels. The
        weights expect images in [0, 1] normalised with ImageNet's channel means and
        standard deviations (``sklearn_cnn.pretrained.IMAGENET_MEAN`` / ``_STD``).
        See :mod:`sklearn_cnn.pretrained`. Reading the file needs torch; training
        runs on either backend.
    weights : str or path-like, default=None
        A torchvision-format ``state_dict`` file (``.pth``) to start from instead of
        the hub cache; implies ``pretrained=True``. Read with
        ``torch.load(weights_only=True)``: a file holding pickled objects is refused.
    freeze : "features", int or None, default=None
        Keep leading layers fixed while training: ``"features"`` freezes every
        layer before the first dense one (fine-tune only the head of an
        ``init_from`` model), an int that many top-level layers.""",
    "architecture": """\
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where the torch backend trains and predicts (any torch device string);
        ``"auto"`` picks CUDA when available. The NumPy backend runs on the CPU.
    mixed_precision : {"bfloat16"} or None, default=None
        Torch backend only: train under ``torch.autocast`` in bfloat16 (products
        and convolutions in bfloat16, weights, optimizer and loss in float32): on
        a CPU with AVX-512 BF16, or an Ampere or newer GPU, about twice the training
        speed for an accuracy close to float32's. A CPU without AVX-512 BF16 or
        AMX can only emulate bfloat16, several times slower than float32 (6.4x on
        an AVX2 CPU): the fit warns there. Prediction stays float32.
    filters : tuple of int, default=None
        Convolution widths, one per stage (LeNet: ``(6, 16)``; VGG and ResNet: the
        widths of their stages). None keeps the architecture's own.
    kernel_size : int, default=None
        Convolution kernel size (``"lenet"``, ``"simple"``).
    hidden_units : tuple of int, default=None
        Widths of the dense layers before the output layer.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}, default=None
    pooling : {"max", "avg"}, default=None
    dropout : float, default=None
        Dropout rate in the dense head.
    batch_norm : bool, default=None
        BatchNorm after every convolution.
    width : float, default=None
        Multiplier of every convolution and dense width (``0.25`` for a narrow net).

        Each of these eight is passed to the architecture when set; one that the
        architecture does not take raises a ValueError that lists those it takes
        (``sklearn_cnn.architectures.architecture_parameters(name)``).""",
    "attributes": """\
    n_features_in_ : int
        Values per sample (``C * H * W``).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.
    input_shape_ : tuple of int
        ``(C, H, W)`` of the images the network was built for.
    specs_ : tuple of LayerSpec or None
        The network that was built, after adaptation to ``input_shape_`` (None for
        a custom ``torch.nn.Module``).
    model_ : object
        The backend's trained network: a ``Network`` for the NumPy backend, the
        skorch ``NeuralNet`` (with its ``history`` and ``module_``) for torch.
    loss_curve_ : list of float
        Mean training loss (L2 penalty included) of each epoch.
    best_loss_ : float or None
        Lowest training loss (without early stopping).
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen by the solver.""",
}


def fill_docstring(cls: type) -> type:
    """Class decorator: put the shared parameter descriptions into ``cls.__doc__``."""
    cls.__doc__ = cls.__doc__ % PARAMETER_DOCS
    return cls


def _shape_of(X) -> tuple:
    """X's array shape, or () when it has none (a ragged list, say). Array-likes
    are asked through ``__array__`` only (as check_array asks them)."""
    shape = getattr(X, "shape", None)
    if isinstance(shape, tuple):
        return shape
    try:
        return tuple(np.shape(X) if isinstance(X, (list, tuple)) else np.asarray(X).shape)
    except (ValueError, TypeError):
        return ()


class BaseCNN(TransformerMixin, BaseEstimator):
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
        "test_time_augment": [StrOptions({"flip"}), None],
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

    def __getstate__(self):
        """Pickle's (and skops') state. A torch-backend network built from specs is
        stored as NumPy arrays and plain values (weights, optimizer state, history),
        not as torch objects: skops can then write it safely, and the file does not
        depend on the torch version or the device it was trained on."""
        state = super().__getstate__()
        if state.get("_backend_name") == "torch" and state.get("specs_") is not None \
                and "model_" in state:
            state = {**state, "model_": get_backend("torch").to_portable(self.model_)}
        return state

    def __setstate__(self, state):
        if state.get("_backend_name") == "torch" and isinstance(state.get("model_"), dict):
            model = get_backend("torch").from_portable(state["specs_"], state["input_shape_"],
                                                       state["model_"])
            state = {**state, "model_": model}
        super().__setstate__(state)

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

    def _fit(self, X, y, sample_weight, partial: bool, classes=None):
        """Validate everything, train, then set the fitted state in one step: a call
        that fails leaves the estimator exactly as it was."""
        backend = get_backend(self.backend)
        if self.mixed_precision is not None and backend.name != "torch":
            raise ValueError(f"mixed_precision={self.mixed_precision!r} is a torch "
                             f"backend option; use backend='torch' or "
                             f"mixed_precision=None (backend={self.backend!r})")
        resume = hasattr(self, "model_") and (partial or self.warm_start)
        if resume and self.specs_ is None and backend.name != self._backend_name:
            raise ValueError(f"this estimator was fitted with backend="
                             f"{self._backend_name!r} on a custom torch.nn.Module, which "
                             f"cannot move to backend={self.backend!r}")
        images = to_images(X, input_shape=self.input_shape, channels=self.channels,
                           dtype=self._model_dtype() if resume else None)
        if resume:
            self._check_image_shape(images)
            _check_feature_names(self, X, reset=False)
        warn_if_unscaled(images)
        encoded, targets, weights = self._encode_targets(y, images, sample_weight, resume,
                                                         classes)
        if encoded.dtype.kind == "f":
            encoded = encoded.astype(images.dtype)
        n_outputs = self._n_outputs(targets)
        init_seed, train_seed = check_random_state(self.random_state).randint(
            0, 2**31 - 1, size=2)
        if resume:
            model, specs, notes = self._resumed_model(backend), self.specs_, self._notes
            history = self._history()
        else:
            specs, notes, model = self._new_model(backend, images.shape[1:], images.dtype,
                                                  n_outputs, init_seed)
            history = History()
        rollback = backend.snapshot(model) if resume else None
        try:
            records, stopped, epochs = self._run_epochs(
                backend, model, TrainingData(images, encoded, weights,
                                             self._baseline_loss(encoded, weights)),
                partial, history, train_seed)
        except BaseException:
            if rollback is not None:  # nothing of a failed call stays behind
                backend.restore(model, rollback)
            raise
        early = self.early_stopping and not partial
        self._set_fitted(model, backend.name, history.extended(records, len(encoded), early),
                         targets=targets, input_shape=images.shape[1:], specs=specs,
                         notes=notes, feature_names=_get_feature_names(X))
        # cosine and one-cycle plan their decay to end at the last epoch: reaching it is
        # the plan, not a failure to converge
        open_ended = self.learning_rate in ("constant", "invscaling", "adaptive")
        if not partial and open_ended and not stopped and len(records) == epochs:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({epochs}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning, stacklevel=3)
        return self

    def _run_epochs(self, backend, model, data: TrainingData, partial, history, seed):
        """The epochs of this call (one for partial_fit), through the one loop."""
        early = self.early_stopping and not partial
        validation = None
        if early:
            X, X_val, y, y_val, weights = validation_split(
                data.X, data.y, data.sample_weight, float(self.validation_fraction), seed,
                stratified=is_classifier(self))
            data = TrainingData(X, y, weights, data.baseline_loss)
            validation = (X_val, y_val)
        n_samples = len(data.y)
        batch_size = auto_batch_size(self.batch_size, n_samples)
        epochs = 1 if partial else auto_epochs(self.max_iter, n_samples, batch_size)
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
            progress=self.verbose >= 2, samples_seen=history.t)
        # one generator for the batch order, the augmentations and the dropout seeds;
        # a later partial_fit or warm fit draws a new stream
        rng = np.random.default_rng([int(seed), history.n_iter])
        return (*run_epochs(backend, model, data, settings, rng), epochs)

    def _new_model(self, backend, input_shape, dtype, n_outputs, init_seed):
        """``(specs, notes, model)`` of a fresh network for images of ``input_shape``."""
        if is_torch_module(self.arch):
            config = self._training_config(None)
            return None, [], self._build_torch_module(backend, input_shape, n_outputs,
                                                      init_seed, dtype, config)
        specs, notes = build_specs(self, input_shape, n_outputs,
                                   outputs="classes" if is_classifier(self) else "outputs")
        config = self._training_config(specs)
        weights, more_notes = initial_weights(self, specs, input_shape, init_seed)
        model = backend.build(specs, input_shape, weights, config=config, dtype=dtype,
                              device=self.device)
        if self.verbose:
            print(summarize_specs(specs, input_shape, [*notes, *more_notes]))
        return specs, [*notes, *more_notes], model

    def _resumed_model(self, backend):
        """The fitted model, configured to go on training with the current parameters;
        a model of another backend (``set_params(backend=...)`` since) is converted,
        with a fresh optimizer. The fitted model itself is changed only by training."""
        config = self._training_config(self.specs_)
        if backend.name != self._backend_name:
            return backend.build(self.specs_, self.input_shape_, self.get_weights(),
                                 config=config, dtype=self._model_dtype(),
                                 device=self.device)
        backend.configure(self.model_, config, keep_state=True)
        return self.model_

    def _set_fitted(self, model, backend_name: str, history: History, *, targets: dict,
                    input_shape, specs, notes, feature_names) -> None:
        """Set every fitted attribute: the one place that does (fit, partial_fit,
        load and to_backend all come here). ``targets``: the subclass's target
        attributes, by name."""
        for name, value in targets.items():
            setattr(self, name, value)
        self.n_features_in_ = math.prod(input_shape)
        self.input_shape_ = tuple(input_shape)
        self.specs_, self._notes = specs, list(notes)
        self.model_, self._backend_name = model, backend_name
        self.loss_curve_ = list(history.loss_curve)
        self.n_iter_, self.t_ = history.n_iter, history.t
        scores = history.validation_scores
        self.validation_scores_ = None if scores is None else list(scores)
        self.best_validation_score_ = max(scores) if scores else None
        self.best_loss_ = min(self.loss_curve_) if scores is None and self.loss_curve_ \
            else None
        if feature_names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = feature_names

    def _history(self) -> History:
        """The fitted training record, as :class:`History`."""
        scores = self.validation_scores_
        return History(tuple(self.loss_curve_), None if scores is None else tuple(scores),
                       self.t_)

    def _model_dtype(self) -> np.dtype:
        return get_backend(self._backend_name).dtype(self.model_)

    def _sample_weight(self, sample_weight, images) -> np.ndarray | None:
        """``sample_weight`` checked (finite, non-negative, one per image), or None."""
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, images, dtype=np.float64,
                                    ensure_non_negative=True)

    def _build_torch_module(self, backend, input_shape, n_outputs, seed, dtype, config):
        if backend.name != "torch":
            raise ValueError("arch given as a torch.nn.Module needs backend='torch'; "
                             f"got backend={self.backend!r}")
        if arch_params(self):
            raise ValueError(f"architecture parameters {sorted(arch_params(self))} "
                             "apply to named architectures, not to a torch.nn.Module")
        return backend.build_module(self.arch, input_shape, n_outputs, seed, config=config,
                                    dtype=dtype, device=self.device)

    def _training_config(self, specs) -> TrainingConfig:
        """How the optimizer steps, from the estimator's parameters (``specs``: the
        network's, for ``freeze``)."""
        numbers = {name: float(getattr(self, name)) for name in (
            "learning_rate_init", "alpha", "momentum", "beta_1", "beta_2", "epsilon")}
        # Python floats, whatever NumPy type a grid gave
        return TrainingConfig(
            solver=self.solver, nesterovs_momentum=bool(self.nesterovs_momentum),
            max_grad_norm=None if self.max_grad_norm is None else float(self.max_grad_norm),
            frozen_layers=frozen_layers(to_python(self.freeze), specs),
            mixed_precision=self.mixed_precision, **self._training_loss(), **numbers)

    # -- prediction --------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform() returns the penultimate features, so it is a transformer too
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        tags.input_tags.three_d_array = True  # images (n, H, W) and (n, C, H, W)
        return tags

    def _backend_and_images(self, X):
        """The backend that fitted the model, and X validated as images of the fitted
        shape, in the dtype its model computes in."""
        check_is_fitted(self)
        _check_feature_names(self, X, reset=False)
        shape = _shape_of(X)
        try:
            images = to_images(X, input_shape=self._predict_input_shape(shape),
                               channels=self.channels, dtype=self._model_dtype())
            self._check_image_shape(images)
        except ValueError:
            c, h, w = self.input_shape_
            if shape in ((h, w), (c, h, w), (h, w, c)):
                raise ValueError(f"X has the shape of one image, {shape}; the "
                                 "estimator takes a batch of images: pass X[None] (or "
                                 "[image]) for one image") from None
            raise
        return get_backend(self._backend_name), images

    def _predict_input_shape(self, shape: tuple) -> tuple | None:
        """The shape flat rows are read in after fit: ``input_shape`` when given, else
        the fitted image shape when it has one channel (a flat row of several channels
        could be channels first or last, and is read as ``fit`` reads it)."""
        if self.input_shape is not None or len(shape) != 2:
            return self.input_shape
        if shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input: flat rows of images of shape "
                f"{self.input_shape_} (C, H, W)")
        return self.input_shape_ if self.input_shape_[0] == 1 else None

    def _check_image_shape(self, images: np.ndarray) -> None:
        if images.shape[1:] != self.input_shape_:
            name = type(self).__name__
            n_features = math.prod(images.shape[1:])
            counts = (f"X has {n_features} features, but {name} is expecting "
                      f"{self.n_features_in_} features as input: "
                      if n_features != self.n_features_in_ else "")
            raise ValueError(
                f"{counts}X holds images of shape {images.shape[1:]} (C, H, W), but this "
                f"{name} was fitted on images of shape {self.input_shape_}"
            )

    def _output(self, backend, images) -> np.ndarray:
        """The network's output on validated images (N, n_outputs), float64, finite."""
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, if at all
            outputs = backend.predict_output(self.model_, images)
        broken = ~np.isfinite(outputs).all(axis=1)
        if broken.any():  # never NaN rows, which predict would read as the first class
            raise ValueError(f"The network's output overflowed to inf or NaN for "
                             f"{broken.sum()} of the {len(outputs)} images; their values "
                             "are too large for it: scale the images as at fit time")
        return outputs

    def _score_inputs(self, X, y, sample_weight, check_y):
        """``(outputs, y, sample_weight)`` for ``score``: X, y (``check_y(y)``) and
        sample_weight all checked before the network runs."""
        backend, images = self._backend_and_images(X)
        y = check_y(y)
        check_consistent_length(images, y, sample_weight)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, images)
        return self._predicted(backend, images), y, sample_weight

    def _link(self, outputs: np.ndarray) -> np.ndarray:
        """What the network's outputs are averaged as: themselves here (a classifier:
        their probabilities)."""
        return outputs

    def _predicted(self, backend, images) -> np.ndarray:
        """What ``predict`` reads, for validated images: ``_link`` of the network's
        outputs, averaged with that of the mirrored images with
        ``test_time_augment="flip"``."""
        predicted = self._link(self._output(backend, images))
        if self.test_time_augment == "flip":
            mirrored = np.ascontiguousarray(images[..., ::-1])
            predicted += self._link(self._output(backend, mirrored))
            predicted /= 2
        return predicted

    @property
    def _n_features_out(self) -> int:
        """Width of :meth:`transform`'s output (``get_feature_names_out`` names
        them ``cnnclassifier0``, ``cnnclassifier1``...)."""
        self._require_specs("get_feature_names_out()")
        return math.prod(self._shape_after(len(self.specs_) - 1))

    def _shape_after(self, n_layers: int | None = None) -> tuple[int, ...]:
        """Shape of one sample after the network's first ``n_layers`` top-level layers
        (all of them when None: the output's)."""
        shape = self.input_shape_
        for spec in self.specs_[:n_layers]:
            shape = spec.output_shape(shape)
        return tuple(shape)

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
        backend, images = self._backend_and_images(X)
        if self.specs_ is None:
            raise ValueError("transform() needs an architecture made of sklearn_cnn.layers "
                             "specs; a custom torch.nn.Module has no known last layer")
        penultimate = str(len(self.specs_) - 2)
        return backend.forward(self.model_, images, penultimate).reshape(len(images), -1)

    # -- the fitted network ------------------------------------------------------------

    def summary(self) -> Summary:
        """Layer table of the fitted network: output shapes and parameter counts."""
        check_is_fitted(self)
        self._require_specs("summary()")
        return summarize_specs(self.specs_, self.input_shape_, self._notes)

    def save(self, path) -> None:
        """Write the fitted estimator to ``path`` as an ``.npz`` file: weights as
        plain arrays and a JSON description, loadable with
        :func:`sklearn_cnn.load` without unpickling (so without running code)."""
        from .persistence import save

        save(self, path)

    def _require_specs(self, what: str) -> None:
        if self.specs_ is None:
            raise ValueError(f"{what} needs an architecture made of sklearn_cnn.layers "
                             "specs; this estimator was fitted with a custom "
                             "torch.nn.Module")

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
        return get_backend(self._backend_name).get_weights(self.model_)

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
        self._require_specs("to_backend()")
        target = get_backend(backend)
        device = self.device if backend != "numpy" else "cpu"
        copy = clone(self).set_params(backend=backend, device=device)
        model = target.build(self.specs_, self.input_shape_, self.get_weights(),
                             config=copy._training_config(self.specs_),
                             dtype=self._model_dtype(), device=device)
        copy._set_fitted(model, target.name, self._history(), targets=self._fitted_targets(),
                         input_shape=self.input_shape_, specs=self.specs_, notes=self._notes,
                         feature_names=getattr(self, "feature_names_in_", None))
        return copy
