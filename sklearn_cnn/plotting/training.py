"""Pictures of how a fitted estimator trained and what it gets wrong: the loss curve,
and the misclassified images."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._input import to_images
from ._common import _deprecated, _displayable, _label_text, _panels, _pyplot

__all__ = ["LossCurveDisplay", "MisclassifiedDisplay", "plot_loss_curve",
           "plot_misclassified"]


class LossCurveDisplay:
    """Training loss per epoch and, with early stopping, the validation score per
    epoch on a second y axis, as a scikit-learn Display. Epochs are whole numbers on
    the x axis.

    Parameters
    ----------
    loss_curve : sequence of float
    validation_scores : sequence of float or None
    score_name : str, default="validation accuracy"

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : matplotlib Axes
        The loss axis.
    validation_ax_ : matplotlib Axes or None
        Its twin with the validation scores, when there are some.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import LossCurveDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=2, early_stopping=True, random_state=0)
    >>> display = LossCurveDisplay.from_estimator(clf.fit(X[:200], y[:200]))
    >>> len(display.ax_.lines[0].get_xdata()), display.validation_ax_ is not None
    (2, True)

    From numbers of your own:

    >>> LossCurveDisplay([0.9, 0.5, 0.4]).plot().validation_ax_ is None
    True
    """

    def __init__(self, loss_curve, validation_scores=None,
                 score_name: str = "validation accuracy"):
        self.loss_curve = list(loss_curve)
        self.validation_scores = None if not validation_scores else list(validation_scores)
        self.score_name = score_name

    @classmethod
    def from_estimator(cls, clf, ax=None) -> LossCurveDisplay:
        """Draw a fitted estimator's ``loss_curve_`` and ``validation_scores_``
        (accuracy for a classifier, R^2 for a regressor) on ``ax`` or a new figure."""
        from sklearn.base import is_regressor

        check_is_fitted(clf)
        name = "validation R^2" if is_regressor(clf) else "validation accuracy"
        return cls(clf.loss_curve_, getattr(clf, "validation_scores_", None),
                   name).plot(ax=ax)

    def plot(self, ax=None) -> LossCurveDisplay:
        """Draw on ``ax`` or on a new figure; returns ``self``."""
        from matplotlib.ticker import MaxNLocator

        plt = _pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        else:
            fig = ax.figure
        losses = np.asarray(self.loss_curve, dtype=float)
        epochs = np.arange(1, len(losses) + 1)
        ax.plot(epochs, losses, "o-", color="tab:blue", markersize=3, label="training loss")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("training loss", color="tab:blue")
        ax.set_title("Training history")
        twin = None
        if self.validation_scores:
            twin = ax.twinx()
            twin.plot(epochs[-len(self.validation_scores):], self.validation_scores, "s-",
                      color="tab:orange", markersize=3, label=self.score_name)
            twin.set_ylabel(self.score_name, color="tab:orange")
        ax.grid(alpha=0.3)
        self.figure_, self.ax_, self.validation_ax_ = fig, ax, twin
        return self


def plot_loss_curve(clf, ax=None):
    """Draw the training loss per epoch and the validation score, if any.

    Deprecated: use ``LossCurveDisplay.from_estimator(clf).figure_``; this shortcut
    warns a FutureWarning and will be removed in a future release.

    Parameters
    ----------
    clf : fitted CNNClassifier or CNNRegressor
    ax : matplotlib Axes, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``fig.axes[0]`` is the loss axis (the first axis of a given figure is
        ``ax``); the validation axis, when drawn, is ``fig.axes[-1]``.
    """
    _deprecated("plot_loss_curve", "LossCurveDisplay.from_estimator(clf).figure_")
    return LossCurveDisplay.from_estimator(clf, ax=ax).figure_


class MisclassifiedDisplay:
    """The images a classifier gets wrong, titled ``true / predicted``, as a
    scikit-learn Display.

    Parameters
    ----------
    images : ndarray of shape (n_shown, C, H, W)
    true, predicted : sequence of str
        The labels to write (class names, when given).
    n_wrong, n_total : int
        How many mistakes there are in all, among how many images (the title).

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : ndarray of matplotlib Axes, one per shown image (one empty panel when
        there is no mistake)

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import MisclassifiedDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200])
    >>> names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
    ...          "nine"]
    >>> display = MisclassifiedDisplay.from_estimator(clf, X[200:400], y[200:400],
    ...                                              max_images=4, class_names=names)
    >>> len(display.ax_), " / " in display.ax_[0].get_title()
    (4, True)
    """

    def __init__(self, images, true, predicted, n_wrong: int, n_total: int):
        self.images = np.asarray(images)
        self.true, self.predicted = [str(t) for t in true], [str(p) for p in predicted]
        self.n_wrong, self.n_total = int(n_wrong), int(n_total)

    @classmethod
    def from_estimator(cls, clf, X, y, *, max_images: int = 16, class_names=None,
                       ax=None) -> MisclassifiedDisplay:
        """Predict X, and draw the first ``max_images`` images whose prediction is not
        ``y``; ``class_names`` (in the order of ``clf.classes_``) names the labels."""
        check_is_fitted(clf)
        y = np.asarray(y)
        predicted = clf.predict(X)
        if len(y) != len(predicted):
            raise ValueError(f"X holds {len(predicted)} images but y has {len(y)} labels")
        wrong = np.flatnonzero(predicted != y)
        shown = wrong[:max_images]
        images = to_images(X, input_shape=clf.network_.input_shape,
                           channels=getattr(clf, "channels", "auto"))[shown]
        return cls(images, [_label_text(clf, v, class_names) for v in y[shown]],
                   [_label_text(clf, v, class_names) for v in predicted[shown]],
                   len(wrong), len(y)).plot(ax=ax)

    def plot(self, ax=None) -> MisclassifiedDisplay:
        """Draw on ``ax`` (at least one Axes per image) or on a new figure."""
        title = f"{self.n_wrong} of {self.n_total} images misclassified (true / predicted)"
        if not len(self.images):
            fig, axes = _panels(1, title, ax)
            axes[0].text(0.5, 0.5, "none", ha="center", va="center")
            self.figure_, self.ax_ = fig, axes
            return self
        fig, axes = _panels(len(self.images), title, ax,
                            max_cols=min(8, math.ceil(len(self.images) ** 0.5)))
        for axis, picture, true, guess in zip(axes, _displayable(self.images), self.true,
                                              self.predicted, strict=True):
            axis.imshow(picture, cmap="gray")
            axis.set_title(f"{true} / {guess}", fontsize=9, color="tab:red")
        self.figure_, self.ax_ = fig, axes
        return self


def plot_misclassified(clf, X, y, max_images: int = 16, *, class_names=None):
    """Draw the images the classifier gets wrong.

    Deprecated: use ``MisclassifiedDisplay.from_estimator(clf, X, y, ...).figure_``;
    this shortcut warns a FutureWarning and will be removed in a future release.

    Parameters
    ----------
    clf : fitted CNNClassifier
    X : array-like of images, in any layout ``fit`` accepts
    y : array-like of shape (n_samples,)
        True labels.
    max_images : int, default=16
    class_names : sequence of str, default=None
        Names of ``clf.classes_``, in their order, for the titles.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    _deprecated("plot_misclassified",
                "MisclassifiedDisplay.from_estimator(clf, X, y, ...).figure_")
    return MisclassifiedDisplay.from_estimator(clf, X, y, max_images=max_images,
                                               class_names=class_names).figure_
