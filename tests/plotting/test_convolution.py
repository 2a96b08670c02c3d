"""sklearn_cnn.plotting.convolution: the teaching picture shows the convolution the
formula defines, and its size."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from pictures import assert_has_content, assert_shortcut, unclipped  # noqa: E402
from reference import conv2d  # noqa: E402

from sklearn_cnn.plotting import ConvolutionDisplay, plot_convolution  # noqa: E402


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 0), (1, 2), (3, 1)])
def test_convolution_output_is_the_convolution(stride, padding):
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=(9, 11)), rng.normal(size=(3, 2))
    display = ConvolutionDisplay.from_arrays(image, kernel, stride=stride, padding=padding)
    fig, axes = display.figure_, display.figure_.axes
    expected = conv2d(image[None, None], kernel[None, None], [0.0], (stride, stride),
                      (padding,) * 4)[0, 0]
    np.testing.assert_allclose(axes[2].images[0].get_array(), expected, atol=1e-12)
    np.testing.assert_allclose(display.output, expected, atol=1e-12)
    assert display.output.dtype == np.float64
    np.testing.assert_array_equal(axes[0].images[0].get_array(), image)
    np.testing.assert_array_equal(axes[1].images[0].get_array(), kernel)
    ho, wo = expected.shape
    assert axes[2].get_title() == f"Output {ho}x{wo}"
    formulas = axes[2].get_xlabel()
    assert f"(9 + 2*{padding} - 3) // {stride} + 1 = {ho}" in formulas
    assert f"(11 + 2*{padding} - 2) // {stride} + 1 = {wo}" in formulas
    assert_has_content(fig)


def test_convolution_keeps_float64_precision():
    """The picture's network computes in float64: a value float32 would round away
    survives."""
    image = np.full((3, 3), 1.0 + 2.0 ** -40)
    output = ConvolutionDisplay.from_arrays(image, np.ones((3, 3))).output
    np.testing.assert_array_equal(output, [[9 * (1.0 + 2.0 ** -40)]])


def test_vertical_edge_kernel_finds_the_edge():
    image = np.zeros((8, 8))
    image[:, :4] = 1.0
    axes = ConvolutionDisplay.from_arrays(image, [[1, 0, -1]] * 3).ax_
    output = np.asarray(axes[2].images[0].get_array())
    assert output.shape == (6, 6)
    np.testing.assert_array_equal(output, np.tile([0.0, 0, 3, 3, 0, 0], (6, 1)))
    assert [t.get_text() for t in axes[1].texts] == ["1", "0", "-1"] * 3


def test_convolution_draws_on_given_axes():
    fig, given = plt.subplots(1, 3)
    display = ConvolutionDisplay.from_arrays(np.eye(5), np.ones((2, 2)), ax=given)
    assert display.figure_ is fig and list(display.ax_) == list(given)
    with pytest.warns(FutureWarning):
        assert plot_convolution(np.eye(5), np.ones((2, 2)), ax=given) is fig
    with pytest.raises(ValueError, match="3 Axes"):
        ConvolutionDisplay.from_arrays(np.eye(5), np.ones((2, 2)), ax=given[:2])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kernel": np.ones((7, 2))}, "does not fit"),
    ({"stride": 0}, "stride must be an int >= 1"),
    ({"padding": -1}, "padding must be an int >= 0"),
    ({"padding": 1.5}, "padding must be an int"),
])
def test_convolution_rejects_bad_arguments(kwargs, match):
    arguments = {"image": np.ones((5, 5)), "kernel": np.ones((3, 3)), **kwargs}
    with pytest.raises(ValueError, match=match):
        ConvolutionDisplay.from_arrays(arguments.pop("image"), arguments.pop("kernel"),
                                       **arguments)


def test_missing_matplotlib_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cnn\[plot\]'"):
        ConvolutionDisplay.from_arrays(np.eye(4), np.ones((2, 2)))


def test_convolution_figure_is_whole():
    figure = ConvolutionDisplay.from_arrays(np.eye(5), np.ones((2, 2))).figure_
    assert isinstance(figure, Figure) and unclipped(figure)


def test_plot_convolution_is_a_deprecated_shortcut():
    image, kernel = np.eye(6), np.array([[1.0, -1.0]])
    display = ConvolutionDisplay.from_arrays(image, kernel, stride=2, padding=1)
    fig = assert_shortcut(
        lambda: plot_convolution(image, kernel, stride=2, padding=1), display, __file__,
        r"plot_convolution is deprecated and will be removed in a future release; "
        r"use ConvolutionDisplay\.from_arrays\(image, kernel, \.\.\.\)\.figure_")
    assert fig is not display.figure_
