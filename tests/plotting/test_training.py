"""sklearn_cnn.plotting.training: the loss curve and the mistakes drawn are the
estimator's."""

import re

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from pictures import assert_has_content, assert_shortcut, panel_arrays, unclipped  # noqa: E402
from recipes import LENET  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sklearn_cnn import CNNClassifier, CNNRegressor  # noqa: E402
from sklearn_cnn.plotting import (  # noqa: E402
    LossCurveDisplay,
    MisclassifiedDisplay,
    plot_loss_curve,
    plot_misclassified,
)


@pytest.fixture(scope="module")
def plain(digits):
    """LeNet after 2 epochs without early stopping: no validation scores."""
    X_train, _, y_train, _ = digits
    return CNNClassifier(max_iter=2, random_state=0, **LENET).fit(X_train[:100],
                                                                  y_train[:100])


def mistakes_figure(clf, X, y, **kwargs):
    return MisclassifiedDisplay.from_estimator(clf, X, y, **kwargs).figure_


# ------------------------------------------------------------------------ loss curve

def test_loss_curve_shows_loss_and_validation_scores(lenet, plain):
    fig = LossCurveDisplay.from_estimator(lenet).figure_
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), lenet.loss_curve_)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2])
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), lenet.validation_scores_)
    assert_has_content(fig)

    fig = LossCurveDisplay.from_estimator(plain).figure_
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1


def test_loss_curve_ticks_are_whole_epochs(plain, digits):
    display = LossCurveDisplay.from_estimator(plain)
    display.figure_.canvas.draw()
    ticks = [t for t in display.ax_.get_xticks() if 1 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks)
    X_train, _, y_train, _ = digits
    regressor = CNNRegressor(max_iter=2, early_stopping=True, random_state=0).fit(
        X_train[:100], y_train[:100].astype(float))
    assert LossCurveDisplay.from_estimator(regressor).validation_ax_.get_ylabel() == \
        "validation R^2"


def test_loss_curve_of_given_numbers():
    display = LossCurveDisplay([0.9, 0.5, 0.4, 0.35], [0.5, 0.7], "validation F1").plot()
    np.testing.assert_array_equal(display.ax_.lines[0].get_xdata(), [1, 2, 3, 4])
    # the scores of the last epochs, on their epochs
    np.testing.assert_array_equal(display.validation_ax_.lines[0].get_xdata(), [3, 4])
    assert display.validation_ax_.get_ylabel() == "validation F1"


# ------------------------------------------------------------------------- mistakes

def test_misclassified_titles_true_and_predicted(lenet, digits):
    _, X_test, _, y_test = digits
    X, y = X_test[:200], y_test[:200]
    predicted = lenet.predict(X)
    wrong = np.flatnonzero(predicted != y)
    assert len(wrong) > 5  # two epochs on 300 digits leave mistakes to show
    fig = mistakes_figure(lenet, X, y, max_images=5)
    assert len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes] == [
        f"{y[i]} / {predicted[i]}" for i in wrong[:5]]
    np.testing.assert_array_equal(panel_arrays(fig), X[wrong[:5]])
    match = re.match(r"(\d+) of 200 images misclassified", fig._suptitle.get_text())
    assert match and int(match.group(1)) == len(wrong)
    assert_has_content(fig)

    flat = mistakes_figure(lenet, X.reshape(len(X), -1), y, max_images=5)
    np.testing.assert_array_equal(panel_arrays(flat), X[wrong[:5]])
    perfect = mistakes_figure(lenet, X, predicted)
    assert len(perfect.axes) == 1 and perfect.axes[0].texts[0].get_text() == "none"
    with pytest.raises(ValueError, match="y has 3 labels"):
        MisclassifiedDisplay.from_estimator(lenet, X, y[:3])


def test_class_names_wherever_labels_are_shown(lenet, digits):
    _, X_test, _, y_test = digits
    names = [f"digit {d}" for d in range(10)]
    display = MisclassifiedDisplay.from_estimator(lenet, X_test[:100], y_test[:100],
                                                  max_images=3, class_names=names)
    for axis in display.ax_:
        true, guess = axis.get_title().split(" / ")
        assert true in names and guess in names
    with pytest.raises(ValueError, match="class_names has 2 names for 10 classes"):
        MisclassifiedDisplay.from_estimator(lenet, X_test[:100], y_test[:100],
                                            class_names=["a", "b"])


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("draw", [
    lambda clf, X, y: LossCurveDisplay.from_estimator(clf),
    lambda clf, X, y: MisclassifiedDisplay.from_estimator(clf, X, y),
], ids=["loss_curve", "misclassified"])
def test_unfitted_estimator_raises_not_fitted(draw, digits):
    _, X_test, _, y_test = digits
    with pytest.raises(NotFittedError):
        draw(CNNClassifier(), X_test[:5], y_test[:5])


# ------------------------------------------------------------------------- displays

def test_displays_compose_into_a_given_figure(lenet, digits):
    _, X_test, _, y_test = digits
    fig, grid = plt.subplots(1, 8)
    mistakes = MisclassifiedDisplay.from_estimator(lenet, X_test[:100], y_test[:100],
                                                   max_images=2, ax=grid[:2])
    curve = LossCurveDisplay.from_estimator(lenet, ax=grid[7])
    for display in (mistakes, curve):
        assert display.figure_ is fig
    assert list(mistakes.ax_) == list(grid[:2]) and curve.ax_ is grid[7]
    assert grid[0].images and not grid[2].images


def test_display_figures_are_whole(lenet, digits):
    _, X_test, _, y_test = digits
    figures = [LossCurveDisplay.from_estimator(lenet).figure_,
               mistakes_figure(lenet, X_test[:50], y_test[:50])]
    assert all(isinstance(figure, Figure) for figure in figures)
    assert all(unclipped(figure) for figure in figures)


@pytest.mark.parametrize("n_wrong", [0, 1, 2, 5, 40])
def test_the_title_of_the_mistakes_is_whole_however_few_there_are(n_wrong):
    """One or two panels make a grid narrower than the title: the figure widens to
    hold it, and everything else drawn stays inside too."""
    images = np.random.default_rng(0).random((n_wrong, 1, 8, 8))
    display = MisclassifiedDisplay(images, ["3"] * n_wrong, ["5"] * n_wrong, n_wrong,
                                   1797).plot()
    fig = display.figure_
    fig.canvas.draw()
    title = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert title.x0 >= fig.bbox.x0 and title.x1 <= fig.bbox.x1
    assert title.y0 >= fig.bbox.y0 and title.y1 <= fig.bbox.y1
    assert fig._suptitle.get_text() == (f"{n_wrong} of 1797 images misclassified "
                                        "(true / predicted)")
    assert unclipped(fig)


# ------------------------------------------------------------------ deprecated shortcuts

def test_plot_loss_curve_is_a_deprecated_shortcut(lenet):
    display = LossCurveDisplay.from_estimator(lenet)
    fig = assert_shortcut(
        lambda: plot_loss_curve(lenet), display, __file__,
        r"plot_loss_curve is deprecated and will be removed in a future release; "
        r"use LossCurveDisplay\.from_estimator\(clf\)\.figure_")
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), lenet.loss_curve_)
    _, given = plt.subplots()
    with pytest.warns(FutureWarning, match="plot_loss_curve is deprecated"):
        assert plot_loss_curve(lenet, ax=given) is given.figure


def test_plot_misclassified_is_a_deprecated_shortcut(lenet, digits):
    _, X_test, _, y_test = digits
    names = [f"digit {d}" for d in range(10)]
    display = MisclassifiedDisplay.from_estimator(lenet, X_test[:100], y_test[:100],
                                                  max_images=3, class_names=names)
    assert_shortcut(
        lambda: plot_misclassified(lenet, X_test[:100], y_test[:100], 3, class_names=names),
        display, __file__, r"plot_misclassified is deprecated .*; use "
        r"MisclassifiedDisplay\.from_estimator\(clf, X, y, \.\.\.\)\.figure_")
