"""sklearn_cnn.plotting.explanations: images beside their explanation maps."""

import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from pictures import assert_shortcut, unclipped  # noqa: E402

from sklearn_cnn.inspection import saliency  # noqa: E402
from sklearn_cnn.plotting import ExplanationDisplay, plot_explanation  # noqa: E402


def test_explanation_display_draws_images_maps_and_overlays(lenet, digits):
    _, X_test, _, _ = digits
    display = ExplanationDisplay.from_estimator(lenet, X_test[:3],
                                                class_names=[f"digit {d}" for d in range(10)])
    assert display.ax_.shape == (3, 7) and display.figure_ is display.ax_[0, 0].figure
    assert [a.get_title() for a in display.ax_[0]] == [
        f"digit {lenet.predict(X_test[:1])[0]}", "saliency", "overlay", "grad-cam", "overlay",
        "occlusion", "overlay"]
    assert len(display.ax_[1, 2].get_images()) == 2  # the image, and the map over it
    assert set(display.maps) == {"saliency", "grad_cam", "occlusion"}
    np.testing.assert_allclose(display.maps["saliency"], saliency(lenet, X_test[:3]))
    np.testing.assert_allclose(display.ax_[1, 1].images[0].get_array(),
                               display.maps["saliency"][1])
    buffer = io.BytesIO()
    display.figure_.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explanation_display_composes_into_a_given_figure(lenet, digits):
    _, X_test, _, _ = digits
    fig, axes = plt.subplots(2, 4)
    display = ExplanationDisplay.from_estimator(lenet, X_test[:2], methods=["grad_cam"],
                                                ax=axes[:, 1:])
    assert display.figure_ is fig and display.ax_.shape == (2, 3)
    assert not axes[0, 0].get_images() and axes[0, 1].get_images()
    with pytest.raises(ValueError, match=r"ax must hold 2 x 3 Axes"):
        ExplanationDisplay.from_estimator(lenet, X_test[:2], methods=["grad_cam"], ax=axes)
    with pytest.raises(ValueError, match="methods must be some of"):
        ExplanationDisplay.from_estimator(lenet, X_test[:2], methods=["lime"])
    figure = ExplanationDisplay.from_estimator(lenet, X_test[:2], methods=["saliency"]).figure_
    assert len(figure.axes) == 6


def test_explanation_display_of_maps_of_your_own():
    images = np.random.default_rng(0).random((2, 1, 6, 6))
    display = ExplanationDisplay(images, {"mine": images[:, 0] - 0.5}, ["a", "b"]).plot()
    assert display.ax_.shape == (2, 3)
    assert [a.get_title() for a in display.ax_[0]] == ["a", "mine", "overlay"]
    np.testing.assert_array_equal(display.ax_[1, 1].images[0].get_array(),
                                  images[1, 0] - 0.5)


def test_explanation_figure_is_whole(lenet, digits):
    figure = ExplanationDisplay.from_estimator(lenet, digits[1][:2],
                                               methods=["saliency"]).figure_
    assert isinstance(figure, Figure) and unclipped(figure)


def test_plot_explanation_is_a_deprecated_shortcut(lenet, digits):
    X = digits[1][:2]
    display = ExplanationDisplay.from_estimator(lenet, X, methods=["saliency"])
    fig = assert_shortcut(
        lambda: plot_explanation(lenet, X, methods=["saliency"]), display, __file__,
        r"plot_explanation is deprecated and will be removed in a future release; "
        r"use ExplanationDisplay\.from_estimator\(estimator, X, \.\.\.\)\.figure_")
    assert len(fig.axes) == 6
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="methods must be"):
        plot_explanation(lenet, X, methods=["lime"])
