"""CNNRegressor: continuous targets, their standardization and R^2 around the shared CNN."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_array, check_consistent_length

from ._base import BaseCNN
from ._docs import fill_docstring
from .backends import REGRESSION_LOSSES


def _check_regression_targets(y) -> np.ndarray:
    """y as float64 of shape (n,) or (n, k): numbers, finite, at least one output."""
    if y is None:
        raise ValueError("CNNRegressor requires y to be passed, but the target y is None")
    y = check_array(y, ensure_2d=False, dtype="numeric", ensure_all_finite=True,
                    input_name="y", ensure_min_samples=1)
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] == 0):
        raise ValueError(f"y must be of shape (n_samples,) or (n_samples, n_outputs) with "
                         f"at least one output; got shape {y.shape}")
    return y.astype(np.float64, copy=False)


def _standardization(columns: np.ndarray, weights: np.ndarray | None, robust: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale of each target column, weighted by the sample weights when
    they do not all vanish: mean and standard deviation, or with ``robust`` (the
    Huber and absolute losses) median and interquartile range / 1.349 (the standard
    deviation of normal data), which outliers cannot inflate, as scikit-learn's
    RobustScaler. A column without spread gets scale 1."""
    if weights is None or not weights.sum() > 0:
        weights = None
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.average(columns, axis=0, weights=weights)
        scale = np.sqrt(np.average((columns - mean) ** 2, axis=0, weights=weights))
    if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
        raise ValueError("y holds values too large to standardize (their square "
                         "overflows float64); rescale the targets first")
    if robust:
        quantiles = np.quantile(columns, [0.25, 0.5, 0.75], axis=0, weights=weights,
                                method="inverted_cdf" if weights is not None else "linear")
        mean, spread = quantiles[1], (quantiles[2] - quantiles[0]) / 1.349
        scale = np.where(spread > 0, spread, scale)  # most targets equal: the std
    # as StandardScaler: a spread at rounding level of the values is no spread
    constant = scale <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    return mean, np.where(constant, 1.0, scale)


@fill_docstring
class CNNRegressor(ClassNamePrefixFeaturesOutMixin, RegressorMixin, BaseCNN):
    """Convolutional neural network regressor with a scikit-learn interface.

    The same networks, backends and training loop as :class:`CNNClassifier`, with a
    linear output layer of one unit per target and a regression loss. Parameter
    names follow :class:`~sklearn.neural_network.MLPRegressor` wherever the meaning
    is the same. The targets are standardized internally (each output to mean 0 and
    standard deviation 1, weighted by ``sample_weight``) and the predictions mapped
    back, so the defaults work whatever the targets' scale: angles in degrees, ages
    in years, prices in cents (with the Huber and absolute losses, to median 0 and
    interquartile range 1.349, which outliers do not move). ``score`` is R^2.

    The defaults are the classifier's recipe (``arch="auto"``, Adam with a one-cycle
    schedule peaking at 0.01, ``max_iter="auto"``) with squared error and no
    augmentation: shifting or flipping an image changes a position or an angle,
    which are what image regression often predicts.

    Parameters
    ----------
    arch : str or list of LayerSpec, default="auto"
        A registered architecture (``sklearn_cnn.list_architectures()``) or a list of
        ``sklearn_cnn.layers`` specs ending in a ``Linear(n_outputs)``; see
        :class:`CNNClassifier`. With ``backend="torch"`` also a ``torch.nn.Module``
        subclass or instance that outputs ``(n_samples, n_outputs)`` (a subclass is
        given those of ``n_outputs``, ``in_channels`` and ``input_shape`` that its
        ``__init__`` accepts).
%(network)s
    loss : {"squared_error", "huber", "absolute_error"}, default="squared_error"
        Per output of each sample: ``0.5 * r**2`` of the residual ``r`` on the
        standardized scale (MLPRegressor's squared error), the Huber loss (quadratic
        up to one standard deviation, linear beyond: outliers pull with a bounded
        force; ``torch.nn.HuberLoss(delta=1)``), or ``|r|`` (the median rather than
        the mean). Averaged over the outputs, then over the batch (weighted).
%(optimizer)s
    tol : float, default=1e-4
        Improvement of the training loss (or, with early stopping, the validation
        R^2) that counts as progress.
%(stopping)s
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop on its R^2 (as
        MLPRegressor) and restore the weights of the best epoch at the end.
    augment : {"auto", "small_shift", "flip", "shift", "rotate", "affine", "erase", \
"standard"}, callable, list of them or None, default=None
        Random changes to every training batch, as in :class:`CNNClassifier`;
        ``None`` by default, since most of them change positions and angles. Pass
        ``"small_shift"`` when the target does not depend on where things are.
    test_time_augment : {"auto", "shift", "flip"} or None, default=None
        Copies of each image whose outputs ``predict`` averages with the image's
        own, as in :class:`CNNClassifier`: ``"shift"``, the image moved half a pixel
        four ways (for targets that do not depend on exact positions); ``"flip"``,
        its left-right mirror (for targets a mirror keeps: not an angle);
        ``"auto"``, ``"shift"`` on images of 8 to 13 pixels on the shorter side.
%(transfer)s
%(architecture)s

    Attributes
    ----------
    n_outputs_ : int
        Number of targets (columns of ``y``; 1 for a 1-D ``y``).
    target_mean_ : ndarray of shape (`n_outputs_`,)
        Centre of each target in the training data (of the first call, for
        ``partial_fit``): its mean, or its median with the Huber and absolute
        losses; added back to the network's outputs.
    target_scale_ : ndarray of shape (`n_outputs_`,)
        Spread of each target: its standard deviation, or its interquartile range
        / 1.349 with the Huber and absolute losses (1 for a constant target);
        multiplied into the network's outputs.
%(attributes)s
    validation_scores_ : list of float or None
        Validation R^2 of each epoch (early stopping only).
    best_validation_score_ : float or None
        Its best value (early stopping only).

%(see_also)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 8, 8)).astype(np.float32)
    >>> y = 100 * X[:, :4].mean(axis=(1, 2))  # brightness of the top half
    >>> reg = CNNRegressor(max_iter=5, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> reg.n_outputs_, reg.input_shape_
    (1, (1, 8, 8))
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseCNN._parameter_constraints,
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
    }

    def __init__(self, arch="auto", *, backend="numpy", input_shape=None,
                 channels="auto", loss="squared_error", solver="adam",
                 learning_rate_init=0.01, alpha=0.0001, batch_size="auto", max_iter="auto",
                 shuffle=True, momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, random_state=None, verbose=0,
                 warm_start=False, learning_rate="onecycle", power_t=0.5, tol=1e-4,
                 n_iter_no_change=10, early_stopping=False, validation_fraction=0.1,
                 augment=None, test_time_augment=None, mixed_precision=None,
                 max_grad_norm=None, init_from=None, pretrained=False,
                 weights=None, freeze=None, device="cpu", filters=None, kernel_size=None,
                 hidden_units=None, activation=None, pooling=None, dropout=None,
                 batch_norm=None, width=None):
        self._store_parameters(locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None) -> CNNRegressor:
        """One epoch over (X, y), continuing from the current weights and optimizer.

        The first call fixes the targets' standardization (``target_mean_``,
        ``target_scale_``) from its y: give it a representative batch.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : CNNRegressor
        """
        return self._fit(X, y, sample_weight, partial=True)

    def _encode_targets(self, y, images, sample_weight, resume, classes):
        """Targets -> (n, n_outputs) standardized columns."""
        y = _check_regression_targets(y)
        check_consistent_length(images, y)
        weights = self._sample_weight(sample_weight, images)
        columns = y.reshape(len(y), -1)
        if resume:
            if columns.shape[1] != self.n_outputs_ or y.ndim != self._target_ndim:
                raise ValueError(f"y has shape {y.shape}, but this CNNRegressor was fitted "
                                 f"on {self.n_outputs_} output(s) of "
                                 f"{self._target_ndim}-D targets")
            mean, scale = self.target_mean_, self.target_scale_
        else:
            mean, scale = _standardization(columns, weights,
                                           robust=self.loss != "squared_error")
        targets = {"n_outputs_": columns.shape[1], "target_mean_": mean,
                   "target_scale_": scale, "_target_ndim": y.ndim}
        return (columns - mean) / scale, targets, weights

    @staticmethod
    def _n_outputs(targets: dict) -> int:
        return int(targets["n_outputs_"])

    def _fitted_targets(self) -> dict:
        return {"n_outputs_": self.n_outputs_, "target_mean_": self.target_mean_.copy(),
                "target_scale_": self.target_scale_.copy(),
                "_target_ndim": self._target_ndim}

    def _baseline_loss(self, encoded, sample_weight) -> float:
        """The loss of predicting the centre (0 on the standardized scale)."""
        losses = REGRESSION_LOSSES[self.loss](-encoded).mean(axis=1)
        weighted = sample_weight is not None and sample_weight.sum() > 0
        return float(np.average(losses, weights=sample_weight if weighted else None))

    def _training_loss(self) -> dict:
        return {"loss": self.loss, "label_smoothing": 0.0}

    def _validation_score(self, outputs, y) -> float:
        # R^2 of each output is the same on the standardized scale
        return float(r2_score(y, outputs))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _values(self, outputs: np.ndarray) -> np.ndarray:
        """The network's standardized outputs -> targets, shaped as y was."""
        values = outputs * self.target_scale_ + self.target_mean_
        return values.ravel() if self._target_ndim == 1 else values

    def predict(self, X) -> np.ndarray:
        """Predicted targets of each image.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Shaped as the ``y`` of ``fit``; in the network's dtype (float32, or
            float64 for a network fitted on float64 images), as MLPRegressor keeps it.
        """
        values = self._values(self._predicted(self._images(X, keep_pixels=True)))
        return values.astype(self.network_.dtype, copy=False)

    def score(self, X, y, sample_weight=None) -> float:
        """R^2 of :meth:`predict` on (X, y) (averaged over the outputs), as in
        scikit-learn's regressors; X, y and sample_weight are all checked before the
        network runs.

        Parameters
        ----------
        X : array-like of images, in any layout ``fit`` accepts
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        outputs, y, sample_weight = self._score_inputs(X, y, sample_weight,
                                                       _check_regression_targets)
        return float(r2_score(y, self._values(outputs), sample_weight=sample_weight))
