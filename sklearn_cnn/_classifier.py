"""CNNClassifier: the scikit-learn contract around a backend-trained CNN."""

from __future__ import annotations

import math
import os
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.utils import TransformerTags, assert_all_finite, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names,
    _check_sample_weight,
    _get_feature_names,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
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


def _check_targets(y, *, warn: bool) -> np.ndarray:
    """y as a 1-D array of class labels (a column vector warns when ``warn``): finite
    when numeric, and not continuous."""
    y = column_or_1d(y, warn=warn)
    if y.dtype.kind in "fc":
        assert_all_finite(y, input_name="y")
    check_classification_targets(y)
    return y


def _shape_of(X) -> tuple:
    """X's array shape, or () when it has none (a ragged list, say)."""
    try:
        return tuple(np.shape(X))
    except ValueError:
        return ()


def _check_class_weight(class_weight: dict) -> None:
    """A class_weight dict's values must be finite, non-negative numbers."""
    for label, weight in class_weight.items():
        if isinstance(weight, bool) or not isinstance(weight, Real) \
                or not np.isfinite(weight) or weight < 0:
            raise ValueError(f"class_weight must map classes to finite non-negative "
                             f"numbers; got {weight!r} for class {label!r}")


class CNNClassifier(ClassNamePrefixFeaturesOutMixin, ClassifierMixin, TransformerMixin,
                    BaseEstimator):
    """Convolutional neural network classifier with a scikit-learn interface.

    The network is described by backend-neutral layer specs (``arch``) and trained
    by a backend: ``"numpy"`` (written from scratch, no other dependency) or
    ``"torch"``. Parameter names follow :class:`~sklearn.neural_network.MLPClassifier`
    wherever the meaning is the same, so one can stand in for the other in a grid
    search. As in MLPClassifier, the network computes in float64 when X is float64,
    and in float32 for any other X (uint8 images, integers, float32): pass float32
    images for speed. ``uint8`` images are scaled by 1/255 to [0, 1], as
    torchvision's ``ToTensor`` does; other types are used as given (whole numbers up
    to 255 in a float array get a warning).

    The defaults are a recipe measured to beat scikit-learn's classical models on
    images (README, "Measured results"): a small BatchNorm network sized to the
    image (``arch="auto"``), Adam with a one-cycle schedule peaking at 0.01, label
    smoothing 0.1, shifts of up to 1/14 of the image as augmentation, and an epoch
    budget that adapts to the data size (``max_iter="auto"``).

    Parameters
    ----------
    arch : str or list of LayerSpec, default="auto"
        A registered architecture (``sklearn_cnn.list_architectures()``: ``"auto"``,
        a small VGG-style network with BatchNorm whose depth and widths follow the
        image size (see :mod:`sklearn_cnn.architectures.auto`), ``"lenet"``,
        ``"simple"``, ``"alexnet"``, ``"vgg11"``, ``"vgg16"``, ``"resnet18"``,
        ``"resnet34"``, ``"resnet20"``) or a list of ``sklearn_cnn.layers`` specs
        ending in a ``Linear(n_classes)``. With ``backend="torch"`` also a
        ``torch.nn.Module`` subclass or instance, as skorch takes it: a subclass is
        instantiated with those of ``n_classes``, ``in_channels`` and
        ``input_shape`` that its ``__init__`` accepts; an instance is copied, and
        must output ``(n_samples, n_classes)`` logits. Such a model trains and
        predicts, but has no ``summary()`` or ``to_backend()``.
        Registered architectures adapt to images smaller than their native size
        (see :func:`sklearn_cnn.architectures.build_architecture`).
    backend : {"numpy", "torch"}, default="numpy"
        What trains and runs the network: ``"numpy"``, written from scratch with no
        other dependency, or ``"torch"``, PyTorch through skorch (``pip install
        'sklearn-cnn[torch]'``). Both build the same network from the same specs
        and start from the same initial weights for the same ``random_state``.
    input_shape : tuple of int, default=None
        ``(C, H, W)`` (or ``(H, W)``) of one image. Needed only to read flat
        ``(n, F)`` input as non-square images; checked against image input.
    channels : {"auto", "first", "last"}, default="auto"
        Where the channel axis of 4-D input is. ``"auto"`` takes the last axis as
        channels when it has 1, 3 or 4 entries and the second axis has not.
    solver : {"adam", "sgd"}, default="adam"
        ``"sgd"`` uses ``momentum`` and ``nesterovs_momentum``.
    learning_rate_init : float, default=0.01
        Step size (with ``learning_rate="onecycle"``, the peak step size).
    alpha : float, default=0.0001
        L2 penalty on convolution and dense weights, added to the loss as
        ``0.5 * alpha * ||W||^2 / batch_size`` (as in MLPClassifier).
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
        instead of starting afresh (same classes and image shape required). Unlike
        MLPClassifier, which restarts its optimizer, a warm fit picks up where the
        last one stopped, as ``partial_fit`` does.
    learning_rate : {"constant", "invscaling", "adaptive", "cosine", "onecycle"}, \
default="onecycle"
        Learning-rate schedule over the epochs of ``fit`` (``partial_fit`` uses
        ``learning_rate_init``): MLPClassifier's three, plus a cosine decay to 0 and
        Smith's one-cycle (warm-up to ``learning_rate_init`` over 30 % of the
        batches, then cosine decay), both updated every batch. Cosine and one-cycle
        plan to end at ``max_iter``, so reaching it raises no ConvergenceWarning.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    tol : float, default=1e-4
        Improvement of the training loss (or, with early stopping, the validation
        accuracy) that counts as progress.
    n_iter_no_change : int, default=10
        Training stops after this many epochs without progress; if ``max_iter`` is
        reached first, a ConvergenceWarning says so (as in MLPClassifier).
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data, stop on
        its accuracy and restore the weights of the best epoch at the end.
    validation_fraction : float, default=0.1
    augment : {"auto", "small_shift", "flip", "shift", "rotate", "affine", \
"standard"}, callable or None, default="auto"
        Random changes to every training batch (never at predict time):
        ``"auto"`` is ``"small_shift"`` on images of at least 8x8 pixels and nothing
        on smaller ones (a 1 x F row of flat features has no room to move);
        translations of up to 1/14 of the image (``"small_shift"``: 2 whole pixels
        on 28x28; on images under 14 px a fraction of a pixel, by bilinear
        interpolation, as a whole pixel would move an 8x8 image by an eighth; safe
        for digits and text, which flips are not), horizontal flips, translations
        of up to 1/8 of the image by padding and cropping, rotations of up to 10
        degrees, rotation, shear, zoom and sub-pixel shift together (``"affine"``),
        or shift and flip (``"standard"``). A callable receives and returns a float
        batch ``(n, C, H, W)``. Seeded by ``random_state``; same meaning on both
        backends.
    max_grad_norm : float, default=None
        Clip the global L2 norm of the gradients to this before each update.
    init_from : fitted CNNClassifier, FrozenEstimator, str or path-like, default=None
        Start from this model's weights for every layer whose key and shape match
        (the others start fresh): fine-tune a trained network on new classes or
        data, on either backend (train with torch, fine-tune with NumPy). Inside
        ``GridSearchCV`` (which clones parameters, so a fitted model arrives
        unfitted) pass ``sklearn.frozen.FrozenEstimator(model)`` or the path of a
        file written by :meth:`save`.
    pretrained : bool, default=False
        Start from torchvision's ImageNet weights (``arch`` in ``"alexnet"``,
        ``"resnet18"``, ``"resnet34"``, ``"vgg11"``, ``"vgg16"``; VGG with
        ``batch_norm=True`` loads the ``_bn`` weights). The network is then
        torchvision's exact ImageNet form; the weights file is read from the torch
        hub cache (never downloaded), a missing one raises an error saying where it
        was looked for and how to get it. The classifier head is replaced for the
        classes of ``y``; grayscale images work as if repeated to 3 channels. The
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
        layer before the first dense one (fine-tune only the classifier head of an
        ``init_from`` model), an int that many top-level layers.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``; ``"balanced"``
        weights each class by ``n_samples / (n_classes * count)``.
    label_smoothing : float in [0, 1), default=0.1
        Train towards targets that put ``1 - label_smoothing`` on the true class and
        spread ``label_smoothing`` evenly over all classes (Szegedy et al., 2016),
        as ``torch.nn.CrossEntropyLoss(label_smoothing=...)``.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where the torch backend trains and predicts (any torch device string);
        ``"auto"`` picks CUDA when available. The NumPy backend runs on the CPU.
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
        Dropout rate in the classifier head.
    batch_norm : bool, default=None
        BatchNorm after every convolution.
    width : float, default=None
        Multiplier of every convolution and dense width (``0.25`` for a narrow net).

        Each of these eight is passed to the architecture when set; one that the
        architecture does not take raises a ValueError that lists those it takes
        (``sklearn_cnn.architectures.architecture_parameters(name)``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, in the order of ``predict_proba``'s columns.
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
    validation_scores_ : list of float or None
        Validation accuracy of each epoch (early stopping only).
    best_validation_score_ : float or None
        Its best value (early stopping only).
    best_loss_ : float or None
        Lowest training loss (without early stopping).
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen by the solver.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn import CNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16.0
    >>> clf = CNNClassifier(max_iter=2, random_state=0).fit(X[:300], y[:300])
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.input_shape_
    (1, 8, 8)
    """

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
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "cosine",
                                      "onecycle"})],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "augment": [StrOptions(set(augmentations.AUGMENTATIONS)), callable, None],
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

    def __init__(self, arch="auto", *, backend="numpy", input_shape=None,
                 channels="auto", solver="adam", learning_rate_init=0.01, alpha=0.0001,
                 batch_size="auto", max_iter="auto", shuffle=True, momentum=0.9,
                 nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 random_state=None, verbose=0, warm_start=False, class_weight=None,
                 learning_rate="onecycle", power_t=0.5, tol=1e-4, n_iter_no_change=10,
                 early_stopping=False, validation_fraction=0.1, augment="auto",
                 max_grad_norm=None, init_from=None, pretrained=False, weights=None,
                 freeze=None, device="cpu", label_smoothing=0.1, filters=None,
                 kernel_size=None, hidden_units=None, activation=None, pooling=None,
                 dropout=None, batch_norm=None, width=None):
        self.arch = arch
        self.backend = backend
        self.input_shape = input_shape
        self.channels = channels
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.class_weight = class_weight
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.augment = augment
        self.max_grad_norm = max_grad_norm
        self.init_from = init_from
        self.pretrained = pretrained
        self.weights = weights
        self.freeze = freeze
        self.device = device
        self.label_smoothing = label_smoothing
        self.filters = filters
        self.kernel_size = kernel_size
        self.hidden_units = hidden_units
        self.activation = activation
        self.pooling = pooling
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.width = width

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None) -> CNNClassifier:
        """Build the network for X's image shape and train it on (X, y).

        With ``warm_start=True`` and a fitted estimator, training continues from the
        current weights and optimizer state for ``max_iter`` more epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W), (n_samples, C, H, W), \
(n_samples, H, W, C) or (n_samples, F)
            Training images.
        y : array-like of shape (n_samples,)
            Class labels of any type (ints, strings, bools).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights: the loss of a mini-batch is the weighted mean of its
            samples' losses, and the L2 penalty is divided by the batch's total
            weight, so an integer weight counts a sample that many times.

        Returns
        -------
        self : CNNClassifier
        """
        return self._fit(X, y, sample_weight, partial=False, classes=None)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None) -> CNNClassifier:
        """One epoch over (X, y), continuing from the current weights and optimizer.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            Every class that will ever be seen; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : CNNClassifier
        """
        if not hasattr(self, "classes_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    def _fit(self, X, y, sample_weight, partial: bool, classes) -> CNNClassifier:
        """Validate everything, train, then set the fitted state in one step: a call
        that fails leaves the estimator exactly as it was."""
        backend = get_backend(self.backend)
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
        y = _check_targets(y, warn=True)
        check_consistent_length(images, y)
        classes = self._classes_for(y, classes, resume)
        codes = np.searchsorted(classes, y).astype(np.intp)
        weights = self._sample_weight(sample_weight, images, y)
        init_seed, train_seed = check_random_state(self.random_state).randint(
            0, 2**31 - 1, size=2)
        if resume:
            model, specs, notes = self._resumed_model(backend), self.specs_, self._notes
            history = self._history()
        else:
            specs, notes, model = self._new_model(backend, images.shape[1:], images.dtype,
                                                  len(classes), init_seed)
            history = History()
        rollback = backend.snapshot(model) if resume else None
        try:
            records, stopped, epochs = self._run_epochs(backend, model, images, codes,
                                                        weights, partial, history, train_seed)
        except BaseException:
            if rollback is not None:  # nothing of a failed call stays behind
                backend.restore(model, rollback)
            raise
        early = self.early_stopping and not partial
        self._set_fitted(model, backend.name, history.extended(records, len(codes), early),
                         classes=classes, input_shape=images.shape[1:], specs=specs,
                         notes=notes, feature_names=_get_feature_names(X))
        # cosine and one-cycle plan their decay to end at the last epoch: reaching it is
        # the plan, not a failure to converge
        open_ended = self.learning_rate in ("constant", "invscaling", "adaptive")
        if not partial and open_ended and not stopped and len(records) == epochs:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({epochs}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning, stacklevel=3)
        return self

    def _classes_for(self, y, classes, resume) -> np.ndarray:
        """The classes of this fit, checked against y (and against ``classes_`` when
        training goes on)."""
        if resume:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={np.unique(classes).tolist()} differs from the "
                                 f"classes of the first call, {self.classes_.tolist()}")
            classes = self.classes_
        else:
            classes = np.unique(y if classes is None else classes)
        if len(classes) < 2:
            raise ValueError(f"CNNClassifier needs samples of at least 2 classes; got 1 "
                             f"class: {classes.tolist()}")
        unseen = np.setdiff1d(y, classes)
        if len(unseen):
            raise ValueError(f"y contains labels {unseen.tolist()} that are not among the "
                             f"classes {classes.tolist()}")
        return classes

    def _run_epochs(self, backend, model, images, codes, weights, partial, history, seed):
        """The epochs of this call (one for partial_fit), through the one loop."""
        early = self.early_stopping and not partial
        validation = None
        if early:
            images, X_val, codes, y_val, weights = validation_split(
                images, codes, weights, float(self.validation_fraction), seed)
            validation = (X_val, y_val)
        batch_size = auto_batch_size(self.batch_size, len(codes))
        epochs = 1 if partial else auto_epochs(self.max_iter, len(codes), batch_size)
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
            validation=validation, report=print_epoch if self.verbose else None,
            progress=self.verbose >= 2, samples_seen=history.t)
        data = TrainingData(images, codes, weights, n_classes=int(codes.max()) + 1)
        # one generator for the batch order, the augmentations and the dropout seeds;
        # a later partial_fit or warm fit draws a new stream
        rng = np.random.default_rng([int(seed), history.n_iter])
        return (*run_epochs(backend, model, data, settings, rng), epochs)

    def _new_model(self, backend, input_shape, dtype, n_classes, init_seed):
        """``(specs, notes, model)`` of a fresh network for images of ``input_shape``."""
        if is_torch_module(self.arch):
            config = self._training_config(None)
            return None, [], self._build_torch_module(backend, input_shape, n_classes,
                                                      init_seed, dtype, config)
        specs, notes = build_specs(self, input_shape, n_classes)
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

    def _set_fitted(self, model, backend_name: str, history: History, *, classes,
                    input_shape, specs, notes, feature_names) -> None:
        """Set every fitted attribute: the one place that does (fit, partial_fit,
        load and to_backend all come here)."""
        self.classes_ = classes
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

    def _sample_weight(self, sample_weight, images, y) -> np.ndarray | None:
        """sample_weight times the class_weight of each sample's class, or None."""
        if sample_weight is None and self.class_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, images, dtype=np.float64,
                                       ensure_non_negative=True)
        if self.class_weight is not None:
            if isinstance(self.class_weight, dict):
                _check_class_weight(self.class_weight)
            weights = weights * compute_sample_weight(self.class_weight, y)
        return weights

    def _build_torch_module(self, backend, input_shape, n_classes, seed, dtype, config):
        if backend.name != "torch":
            raise ValueError("arch given as a torch.nn.Module needs backend='torch'; "
                             f"got backend={self.backend!r}")
        if arch_params(self):
            raise ValueError(f"architecture parameters {sorted(arch_params(self))} "
                             "apply to named architectures, not to a torch.nn.Module")
        return backend.build_module(self.arch, input_shape, n_classes, seed, config=config,
                                    dtype=dtype, device=self.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform() returns the penultimate features, so it is a transformer too
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        tags.input_tags.three_d_array = True  # images (n, H, W) and (n, C, H, W)
        return tags

    @property
    def _n_features_out(self) -> int:
        """Width of :meth:`transform`'s output (``get_feature_names_out`` names
        them ``cnnclassifier0``, ``cnnclassifier1``...)."""
        self._require_specs("get_feature_names_out()")
        shape = self.input_shape_
        for spec in self.specs_[:-1]:
            shape = spec.output_shape(shape)
        return math.prod(shape)

    def fit_transform(self, X, y, sample_weight=None) -> np.ndarray:
        """Fit, then return the penultimate features of X (see :meth:`transform`)."""
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    def _training_config(self, specs) -> TrainingConfig:
        """How the optimizer steps, from the estimator's parameters (``specs``: the
        network's, for ``freeze``)."""
        numbers = {name: float(getattr(self, name)) for name in (
            "learning_rate_init", "alpha", "momentum", "beta_1", "beta_2", "epsilon",
            "label_smoothing")}  # Python floats, whatever NumPy type a grid gave
        return TrainingConfig(
            solver=self.solver, nesterovs_momentum=bool(self.nesterovs_momentum),
            max_grad_norm=None if self.max_grad_norm is None else float(self.max_grad_norm),
            frozen_layers=frozen_layers(to_python(self.freeze), specs), **numbers)

    def _backend_and_images(self, X):
        """The backend that fitted the model, and X validated as images of the fitted
        shape, in the dtype its model computes in."""
        check_is_fitted(self)
        _check_feature_names(self, X, reset=False)
        try:
            images = to_images(X, input_shape=self.input_shape, channels=self.channels,
                               dtype=self._model_dtype())
            self._check_image_shape(images)
        except ValueError:
            c, h, w = self.input_shape_
            if _shape_of(X) in ((h, w), (c, h, w), (h, w, c)):
                raise ValueError(f"X has the shape of one image, {_shape_of(X)}; the "
                                 "estimator takes a batch of images: pass X[None] (or "
                                 "[image]) for one image") from None
            raise
        return get_backend(self._backend_name), images

    def _check_image_shape(self, images: np.ndarray) -> None:
        if images.shape[1:] != self.input_shape_:
            n_features = math.prod(images.shape[1:])
            counts = (f"X has {n_features} features, but CNNClassifier is expecting "
                      f"{self.n_features_in_} features as input: "
                      if n_features != self.n_features_in_ else "")
            raise ValueError(
                f"{counts}X holds images of shape {images.shape[1:]} (C, H, W), but this "
                f"CNNClassifier was fitted on images of shape {self.input_shape_}"
            )

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        return self._proba(*self._backend_and_images(X))

    def _proba(self, backend, images) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, if at all
            proba = backend.predict_proba(self.model_, images)
        broken = ~np.isfinite(proba).all(axis=1)
        if broken.any():  # never NaN rows, which predict would read as the first class
            raise ValueError(f"The network's output overflowed to inf or NaN for "
                             f"{broken.sum()} of the {len(proba)} images; their values "
                             "are too large for it: scale the images as at fit time")
        return proba

    def transform(self, X) -> np.ndarray:
        """The penultimate layer's output: the features the last layer classifies.

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

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Most probable class of each image, as a label of ``classes_``.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy of :meth:`predict` on (X, y), as in scikit-learn's
        classifiers; X, y and sample_weight are all checked before the network runs.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        backend, images = self._backend_and_images(X)
        y = _check_targets(y, warn=False)
        check_consistent_length(images, y, sample_weight)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, images)
        predicted = self.classes_[self._proba(backend, images).argmax(axis=1)]
        return float(accuracy_score(y, predicted, sample_weight=sample_weight))

    def summary(self) -> Summary:
        """Layer table of the fitted network: output shapes and parameter counts."""
        check_is_fitted(self)
        self._require_specs("summary()")
        return summarize_specs(self.specs_, self.input_shape_, self._notes)

    def save(self, path) -> None:
        """Write the fitted classifier to ``path`` as an ``.npz`` file: weights as
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

    def to_backend(self, backend: str) -> CNNClassifier:
        """A fitted copy of this classifier running on another backend.

        The copy has identical weights (BatchNorm running statistics included), so
        it predicts the same probabilities up to rounding: train with PyTorch, serve
        with NumPy only.

        Parameters
        ----------
        backend : {"numpy", "torch"}

        Returns
        -------
        CNNClassifier
            A new, fitted estimator with ``backend=backend``; this one is unchanged.
        """
        check_is_fitted(self)
        self._require_specs("to_backend()")
        target = get_backend(backend)
        device = self.device if backend != "numpy" else "cpu"
        copy = clone(self).set_params(backend=backend, device=device)
        model = target.build(self.specs_, self.input_shape_, self.get_weights(),
                             config=copy._training_config(self.specs_),
                             dtype=self._model_dtype(), device=device)
        copy._set_fitted(model, target.name, self._history(), classes=self.classes_.copy(),
                         input_shape=self.input_shape_, specs=self.specs_, notes=self._notes,
                         feature_names=getattr(self, "feature_names_in_", None))
        return copy
