"""CNNClassifier: class labels, probabilities and accuracy around the shared CNN."""

from __future__ import annotations

import math
from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.base import ClassifierMixin, ClassNamePrefixFeaturesOutMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._base import BaseCNN
from ._docs import fill_docstring
from ._training import accuracy
from .backends import softmax


def _check_targets(y, *, warn: bool) -> np.ndarray:
    """y as a 1-D array of class labels (a column vector warns when ``warn``): finite
    when numeric, and not continuous."""
    y = column_or_1d(y, warn=warn)
    if y.dtype.kind in "fc":
        assert_all_finite(y, input_name="y")
    check_classification_targets(y)
    return y


def _check_class_weight(class_weight: dict) -> None:
    """A class_weight dict's values must be finite, non-negative numbers."""
    for label, weight in class_weight.items():
        if isinstance(weight, bool) or not isinstance(weight, Real) \
                or not np.isfinite(weight) or weight < 0:
            raise ValueError(f"class_weight must map classes to finite non-negative "
                             f"numbers; got {weight!r} for class {label!r}")


@fill_docstring
class CNNClassifier(ClassNamePrefixFeaturesOutMixin, ClassifierMixin, BaseCNN):
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
    images (see the documentation's benchmarks page): a small BatchNorm network sized to the
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
%(network)s
%(optimizer)s
    tol : float, default=1e-4
        Improvement of the training loss (or, with early stopping, the validation
        accuracy) that counts as progress.
%(stopping)s
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data, stop on
        its accuracy and restore the weights of the best epoch at the end.
    augment : {"auto", "small_shift", "flip", "shift", "rotate", "affine", "erase", \
"standard"}, callable, list of them or None, default="auto"
        Random changes to every training batch (never at predict time):
        ``"auto"`` is ``"small_shift"`` on images of at least 8x8 pixels and nothing
        on smaller ones (a 1 x F row of flat features has no room to move);
        translations of up to 1/14 of the image (``"small_shift"``: 2 whole pixels
        on 28x28; on images under 14 px a fraction of a pixel, by bilinear
        interpolation, as a whole pixel would move an 8x8 image by an eighth; safe
        for digits and text, which flips are not), horizontal flips, translations
        of up to 1/8 of the image by padding and cropping, rotations of up to 10
        degrees, rotation, shear, zoom and sub-pixel shift together (``"affine"``),
        a zeroed rectangle of 2-33 %% of the image in half the images (``"erase"``,
        random erasing), or shift and flip (``"standard"``). A callable receives and
        returns a float batch ``(n, C, H, W)``; a list applies its names and
        callables in turn (``["shift", "flip", "erase"]``). Seeded by
        ``random_state``; same meaning on both backends.
    test_time_augment : {"auto", "shift", "flip"} or None, default="auto"
        Copies of each image whose probabilities ``predict_proba`` (and so
        ``predict`` and ``score``) averages with the image's own. ``"shift"``: the
        image moved half a pixel down, up, right and left (each pixel the mean of
        itself and a neighbour), at five times the cost of a prediction; it makes
        the answer less dependent on exactly where a small glyph sits. ``"flip"``:
        its left-right mirror, at twice the cost; for classes that a mirror keeps
        (clothes, animals; not digits). ``"auto"``: ``"shift"`` on images of 8 to
        13 pixels on the shorter side (the 8x8 digits), where ``augment="auto"``
        trains with sub-pixel shifts and a prediction costs little; none on larger
        images and on rows of features.
%(transfer)s
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``; ``"balanced"``
        weights each class by ``n_samples / (n_classes * count)``.
    label_smoothing : float in [0, 1), default=0.1
        Train towards targets that put ``1 - label_smoothing`` on the true class and
        spread ``label_smoothing`` evenly over all classes (Szegedy et al., 2016),
        as ``torch.nn.CrossEntropyLoss(label_smoothing=...)``.
%(architecture)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, in the order of ``predict_proba``'s columns.
%(attributes)s
    validation_scores_ : list of float or None
        Validation accuracy of each epoch (early stopping only).
    best_validation_score_ : float or None
        Its best value (early stopping only).

%(see_also)s

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
        **BaseCNN._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, arch="auto", *, backend="numpy", input_shape=None,
                 channels="auto", solver="adam", learning_rate_init=0.01, alpha=0.0001,
                 batch_size="auto", max_iter="auto", shuffle=True, momentum=0.9,
                 nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 random_state=None, verbose=0, warm_start=False, class_weight=None,
                 learning_rate="onecycle", power_t=0.5, tol=1e-4, n_iter_no_change=10,
                 early_stopping=False, validation_fraction=0.1, augment="auto",
                 test_time_augment="auto", mixed_precision=None,
                 max_grad_norm=None, init_from=None, pretrained=False, weights=None,
                 freeze=None, device="cpu", label_smoothing=0.1, filters=None,
                 kernel_size=None, hidden_units=None, activation=None, pooling=None,
                 dropout=None, batch_norm=None, width=None):
        self._store_parameters(locals())

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

    def _encode_targets(self, y, images, sample_weight, resume, classes):
        """Labels -> class codes (indices into ``classes_``); class_weight multiplied
        into the sample weights."""
        y = _check_targets(y, warn=True)
        check_consistent_length(images, y)
        classes = self._classes_for(y, classes, resume)
        codes = np.searchsorted(classes, y).astype(np.intp)
        sample_weight = self._sample_weight(sample_weight, images)
        if self.class_weight is not None:
            if isinstance(self.class_weight, dict):
                _check_class_weight(self.class_weight)
            sample_weight = (np.ones(len(y)) if sample_weight is None else sample_weight) \
                * compute_sample_weight(self.class_weight, y)
        return codes, {"classes_": classes}, sample_weight

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

    @staticmethod
    def _n_outputs(targets: dict) -> int:
        return len(targets["classes_"])

    def _fitted_targets(self) -> dict:
        return {"classes_": self.classes_.copy()}

    def _baseline_loss(self, encoded, sample_weight) -> float:
        return math.log(max(int(encoded.max()) + 1, 2))  # uniform probabilities

    def _training_loss(self) -> dict:
        return {"loss": "cross_entropy", "label_smoothing": float(self.label_smoothing)}

    def _validation_score(self, outputs, y) -> float:
        return accuracy(outputs, y)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``. In the network's dtype, as
            MLPClassifier keeps it: float32, or float64 for a network fitted on
            float64 images.
        """
        proba = self._predicted(self._images(X, keep_pixels=True))
        return proba.astype(self.network_.dtype, copy=False)

    def _link(self, outputs: np.ndarray) -> np.ndarray:
        """Probabilities: what ``predict_proba`` returns and flip averaging averages."""
        return softmax(outputs)

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
        outputs, y, sample_weight = self._score_inputs(
            X, y, sample_weight, lambda y: _check_targets(y, warn=False))
        predicted = self.classes_[outputs.argmax(axis=1)]
        return float(accuracy_score(y, predicted, sample_weight=sample_weight))
