"""sklearn_cnn.plotting: every picture renders, and shows the numbers it claims to."""

import io
import re
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text  # noqa: E402
from recipes import LENET  # noqa: E402
from reference import conv2d  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sklearn_cnn import CNNClassifier, CNNRegressor  # noqa: E402
from sklearn_cnn.plotting import (  # noqa: E402
    ConvolutionDisplay,
    ExplanationDisplay,
    FeatureMapsDisplay,
    FiltersDisplay,
    LossCurveDisplay,
    MisclassifiedDisplay,
    feature_maps,
    plot_convolution,
    plot_explanation,
    plot_feature_maps,
    plot_filters,
    plot_loss_curve,
    plot_misclassified,
)

N_TRAIN = 300


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def lenet(digits):
    """LeNet (conv 6@5x5, ReLU, conv 16@5x5, ReLU, pool, dense...) after 2 epochs, with
    early stopping so it has validation scores."""
    X_train, _, y_train, _ = digits
    return CNNClassifier(max_iter=2, early_stopping=True, random_state=0, **LENET).fit(
        X_train[:N_TRAIN], y_train[:N_TRAIN])


def rendered(fig) -> np.ndarray:
    """The figure as a PNG, read back as an (H, W, 4) float array."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    buffer.seek(0)
    return mpimg.imread(buffer)


def assert_has_content(fig):
    pixels = rendered(fig)[..., :3]
    assert pixels.std() > 0.05, "the picture is (nearly) one flat colour"


def panel_arrays(fig) -> np.ndarray:
    return np.stack([np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images])


# ------------------------------------------------------------------------ convolution

@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 0), (1, 2), (3, 1)])
def test_plot_convolution_output_is_the_convolution(stride, padding):
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=(9, 11)), rng.normal(size=(3, 2))
    fig = plot_convolution(image, kernel, stride=stride, padding=padding)
    axes = fig.axes
    expected = conv2d(image[None, None], kernel[None, None], [0.0], (stride, stride),
                      (padding,) * 4)[0, 0]
    np.testing.assert_allclose(axes[2].images[0].get_array(), expected, atol=1e-12)
    np.testing.assert_array_equal(axes[0].images[0].get_array(), image)
    np.testing.assert_array_equal(axes[1].images[0].get_array(), kernel)
    ho, wo = expected.shape
    assert axes[2].get_title() == f"Output {ho}x{wo}"
    formulas = axes[2].get_xlabel()
    assert f"(9 + 2*{padding} - 3) // {stride} + 1 = {ho}" in formulas
    assert f"(11 + 2*{padding} - 2) // {stride} + 1 = {wo}" in formulas
    assert_has_content(fig)


def test_plot_convolution_vertical_edge_kernel_finds_the_edge():
    image = np.zeros((8, 8))
    image[:, :4] = 1.0
    axes = plot_convolution(image, [[1, 0, -1]] * 3).axes
    output = np.asarray(axes[2].images[0].get_array())
    assert output.shape == (6, 6)
    np.testing.assert_array_equal(output, np.tile([0.0, 0, 3, 3, 0, 0], (6, 1)))
    assert [t.get_text() for t in axes[1].texts] == ["1", "0", "-1"] * 3


def test_plot_convolution_draws_on_given_axes():
    fig, given = plt.subplots(1, 3)
    display = ConvolutionDisplay.from_arrays(np.eye(5), np.ones((2, 2)), ax=given)
    assert display.figure_ is fig and list(display.ax_) == list(given)
    assert plot_convolution(np.eye(5), np.ones((2, 2)), ax=given) is fig
    with pytest.raises(ValueError, match="3 Axes"):
        plot_convolution(np.eye(5), np.ones((2, 2)), ax=given[:2])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kernel": np.ones((7, 2))}, "does not fit"),
    ({"stride": 0}, "stride must be an int >= 1"),
    ({"padding": -1}, "padding must be an int >= 0"),
    ({"padding": 1.5}, "padding must be an int"),
])
def test_plot_convolution_rejects_bad_arguments(kwargs, match):
    arguments = {"image": np.ones((5, 5)), "kernel": np.ones((3, 3)), **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_convolution(arguments.pop("image"), arguments.pop("kernel"), **arguments)


# ---------------------------------------------------------------------------- filters

def test_plot_filters_shows_the_learned_kernels(lenet):
    weights = lenet.get_weights()
    first = plot_filters(lenet, layer=0)
    assert len(first.axes) == 6
    np.testing.assert_array_equal(panel_arrays(first), weights["0.weight"][:, 0])
    assert_has_content(first)

    second = plot_filters(lenet, layer=1)  # 16 kernels over 6 input channels
    np.testing.assert_allclose(panel_arrays(second), weights["2.weight"].mean(axis=1))
    assert "mean over 6 input channels" in second._suptitle.get_text()
    by_key = plot_filters(lenet, layer="2.weight", max_filters=4)
    np.testing.assert_array_equal(panel_arrays(by_key), panel_arrays(second)[:4])


@pytest.mark.parametrize(("layer", "match"), [
    (2, r"int in \[0, 1\] \(this network has 2 Conv2d layers\)"),
    (-1, r"\[0, 1\]"),
    (True, r"\[0, 1\]"),
    ("6", r"not a Conv2d layer; the convolutions' keys are \['0', '2'\]"),
])
def test_plot_filters_rejects_a_bad_layer(lenet, layer, match):
    with pytest.raises(ValueError, match=match):
        plot_filters(lenet, layer=layer)


# ----------------------------------------------------------------------- feature maps

def test_feature_maps_are_the_convolution_of_the_image(lenet, digits):
    image = digits[1][0]                                  # (8, 8)
    weights = lenet.get_weights()
    # LeNet adapted to 8x8 pads 'same': 2 zeros on every side of a 5x5 kernel
    expected = conv2d(image[None, None].astype(np.float64), weights["0.weight"],
                      weights["0.bias"], (1, 1), (2, 2, 2, 2))[0]
    np.testing.assert_allclose(feature_maps(lenet, image, layer=0), expected, atol=1e-5)
    np.testing.assert_allclose(feature_maps(lenet, image, layer="1"),
                               np.maximum(expected, 0), atol=1e-5)
    assert feature_maps(lenet, image, layer=1).shape == (16, 8, 8)
    assert feature_maps(lenet, image, layer="4").shape == (16, 4, 4)  # after pooling


def test_feature_maps_accept_every_image_layout(lenet, digits):
    image = digits[1][5]
    expected = feature_maps(lenet, image)
    for layout in (image[None], image[:, :, None], image.ravel(), image.reshape(1, 64),
                   image[None, None], image.astype(np.float64).tolist()):
        np.testing.assert_allclose(feature_maps(lenet, layout), expected, atol=1e-6)
    with pytest.raises(ValueError, match="one image, got a batch of 2"):
        feature_maps(lenet, digits[1][:2])
    with pytest.raises(ValueError, match=r"49 values, .* of shape \(1, 8, 8\)"):
        feature_maps(lenet, np.zeros((7, 7)))
    with pytest.raises(ValueError, match=r"images of shape \(2, 4, 8\) but input_shape"):
        feature_maps(lenet, np.zeros((2, 4, 8)))


def test_feature_maps_inside_a_residual_block(digits):
    X_train, X_test, y_train, _ = digits
    clf = CNNClassifier("resnet20", width=0.25, max_iter=1, random_state=0).fit(
        X_train[:64], y_train[:64])
    conv = clf.specs_[3].body[0]
    before = feature_maps(clf, X_test[0], layer="2")          # the block's input
    weights = clf.get_weights()
    bias = weights.get("3.body.0.bias", np.zeros(conv.out_channels))
    expected = conv2d(before[None].astype(np.float64), weights["3.body.0.weight"], bias,
                      conv.strides, conv.resolve_padding(before.shape))[0]
    np.testing.assert_allclose(feature_maps(clf, X_test[0], layer="3.body.0"), expected,
                               atol=1e-5)
    assert len(plot_filters(clf, layer="3.body.0").axes) == conv.out_channels


def test_plot_feature_maps_renders_on_each_backend(backend, digits):
    X_train, X_test, y_train, _ = digits
    clf = CNNClassifier(max_iter=1, backend=backend, random_state=0, **LENET).fit(
        X_train[:200], y_train[:200])
    fig = plot_feature_maps(clf, X_test[0], layer="1")
    maps = panel_arrays(fig)
    assert maps.shape == (6, 8, 8)
    assert "after layer 1: ReLU" in fig._suptitle.get_text()
    assert_has_content(fig)
    if backend == "torch":  # the NumPy rebuild computes what the trained module computes
        import torch

        with torch.no_grad():
            module_out = clf.model_.module_[:2](torch.from_numpy(X_test[:1, None]))
        np.testing.assert_allclose(maps, module_out[0].numpy(), atol=1e-5)


def test_feature_maps_are_the_same_for_both_backends(lenet, digits):
    pytest.importorskip("skorch")
    on_torch = lenet.to_backend("torch")
    image = digits[1][3]
    for layer in (0, 1, "3", "4"):
        np.testing.assert_array_equal(panel_arrays(plot_feature_maps(on_torch, image, layer)),
                                      panel_arrays(plot_feature_maps(lenet, image, layer)))


@pytest.mark.parametrize(("layer", "match"), [
    ("6", r"outputs a vector of shape \(120,\), not feature maps"),
    ("99", "not a layer key of this network"),
    (5, r"\[0, 1\]"),
])
def test_plot_feature_maps_rejects_a_bad_layer(lenet, digits, layer, match):
    with pytest.raises(ValueError, match=match):
        plot_feature_maps(lenet, digits[1][0], layer=layer)


# ------------------------------------------------------------- loss curve, mistakes

def test_plot_loss_curve_shows_loss_and_validation_scores(lenet, digits):
    fig = plot_loss_curve(lenet)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), lenet.loss_curve_)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2])
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), lenet.validation_scores_)
    assert_has_content(fig)

    X_train, _, y_train, _ = digits
    plain = CNNClassifier(max_iter=1, random_state=0, **LENET).fit(X_train[:100],
                                                                   y_train[:100])
    fig = plot_loss_curve(plain)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1


def test_plot_misclassified_titles_true_and_predicted(lenet, digits):
    _, X_test, _, y_test = digits
    X, y = X_test[:200], y_test[:200]
    predicted = lenet.predict(X)
    wrong = np.flatnonzero(predicted != y)
    assert len(wrong) > 5  # two epochs on 300 digits leave mistakes to show
    fig = plot_misclassified(lenet, X, y, max_images=5)
    assert len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes] == [
        f"{y[i]} / {predicted[i]}" for i in wrong[:5]]
    np.testing.assert_array_equal(panel_arrays(fig), X[wrong[:5]])
    match = re.match(r"(\d+) of 200 images misclassified", fig._suptitle.get_text())
    assert match and int(match.group(1)) == len(wrong)
    assert_has_content(fig)

    flat = plot_misclassified(lenet, X.reshape(len(X), -1), y, max_images=5)
    np.testing.assert_array_equal(panel_arrays(flat), X[wrong[:5]])
    perfect = plot_misclassified(lenet, X, predicted)
    assert len(perfect.axes) == 1 and perfect.axes[0].texts[0].get_text() == "none"
    with pytest.raises(ValueError, match="y has 3 labels"):
        plot_misclassified(lenet, X, y[:3])


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("draw", [
    lambda clf, X, y: plot_filters(clf),
    lambda clf, X, y: plot_feature_maps(clf, X[0]),
    lambda clf, X, y: plot_loss_curve(clf),
    lambda clf, X, y: plot_misclassified(clf, X, y),
], ids=["filters", "feature_maps", "loss_curve", "misclassified"])
def test_unfitted_estimator_raises_not_fitted(draw, digits):
    _, X_test, _, y_test = digits
    with pytest.raises(NotFittedError):
        draw(CNNClassifier(), X_test[:5], y_test[:5])


def test_custom_torch_module_has_no_filters_or_maps(digits):
    torch = pytest.importorskip("torch")
    pytest.importorskip("skorch")

    class TinyNet(torch.nn.Module):
        def __init__(self, n_classes):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.head = torch.nn.Linear(4 * 8 * 8, n_classes)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).flatten(1))

    X_train, X_test, y_train, y_test = digits
    clf = CNNClassifier(TinyNet, backend="torch", max_iter=1, random_state=0).fit(
        X_train[:100], y_train[:100])
    for draw in (lambda: plot_filters(clf), lambda: plot_feature_maps(clf, X_test[0])):
        with pytest.raises(ValueError, match=r"custom torch\.nn\.Module"):
            draw()
    assert_has_content(plot_loss_curve(clf))  # these need no specs
    plot_misclassified(clf, X_test[:50], y_test[:50])


def test_missing_matplotlib_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cnn\[plot\]'"):
        plot_convolution(np.eye(4), np.ones((2, 2)))


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
    buffer = io.BytesIO()
    display.figure_.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    plt.close(display.figure_)


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
        plot_explanation(lenet, X_test[:2], methods=["lime"])
    assert len(plot_explanation(lenet, X_test[:2], methods=["saliency"]).axes) == 6
    plt.close("all")



# ------------------------------------------------------------------------- displays

def unclipped(fig) -> bool:
    """Whether everything drawn (titles, labels, tick labels, text) lies inside the
    figure: its tight bounding box fits in the figure's."""
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())       # inches
    width, height = fig.get_size_inches()
    slack = 0.02
    return (drawn.x0 >= -slack and drawn.y0 >= -slack and drawn.x1 <= width + slack
            and drawn.y1 <= height + slack)


def test_every_picture_is_a_display_that_composes_into_a_given_figure(lenet, digits):
    _, X_test, _, y_test = digits
    fig, grid = plt.subplots(3, 8)
    filters = FiltersDisplay.from_estimator(lenet, layer=0, ax=grid[0])
    maps = FeatureMapsDisplay.from_estimator(lenet, X_test[0], layer=0, ax=grid[1, :6])
    mistakes = MisclassifiedDisplay.from_estimator(lenet, X_test[:100], y_test[:100],
                                                   max_images=2, ax=grid[2, :2])
    curve = LossCurveDisplay.from_estimator(lenet, ax=grid[2, 7])
    for display in (filters, maps, mistakes, curve):
        assert display.figure_ is fig
    assert list(filters.ax_) == list(grid[0, :6]) and curve.ax_ is grid[2, 7]
    assert grid[1, 0].images and not grid[1, 7].images
    with pytest.raises(ValueError, match="at least 6 Axes"):
        FiltersDisplay.from_estimator(lenet, layer=0, ax=grid[0, :3])
    plt.close("all")


def test_the_plain_functions_return_one_figure(lenet, digits):
    _, X_test, _, y_test = digits
    from matplotlib.figure import Figure

    figures = [plot_convolution(np.eye(5), np.ones((2, 2))), plot_filters(lenet),
               plot_feature_maps(lenet, X_test[0]), plot_loss_curve(lenet),
               plot_misclassified(lenet, X_test[:50], y_test[:50]),
               plot_explanation(lenet, X_test[:2], methods=["saliency"])]
    assert all(isinstance(figure, Figure) for figure in figures)
    assert all(unclipped(figure) for figure in figures)
    plt.close("all")


def test_titles_name_a_convolution_by_both_of_its_numbers(lenet, digits):
    _, X_test, _, _ = digits
    second = FiltersDisplay.from_estimator(lenet, layer=1)
    assert second.title.startswith("Filters of convolution 1 (layer 2): Conv2d 16@5x5")
    assert FiltersDisplay.from_estimator(lenet, layer="2").title == second.title
    maps = FeatureMapsDisplay.from_estimator(lenet, X_test[0], layer=1)
    assert maps.title.startswith("Feature maps after convolution 1 (layer 2)")
    relu = FeatureMapsDisplay.from_estimator(lenet, X_test[0], layer="1")
    assert relu.title.startswith("Feature maps after layer 1: ReLU")
    plt.close("all")


def test_loss_curve_ticks_are_whole_epochs(digits):
    X_train, _, y_train, _ = digits
    clf = CNNClassifier(max_iter=3, random_state=0, **LENET).fit(X_train[:100], y_train[:100])
    display = LossCurveDisplay.from_estimator(clf)
    display.figure_.canvas.draw()
    ticks = [t for t in display.ax_.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    regressor = CNNRegressor(max_iter=2, early_stopping=True, random_state=0).fit(
        X_train[:200], y_train[:200].astype(float))
    assert LossCurveDisplay.from_estimator(regressor).validation_ax_.get_ylabel() == \
        "validation R^2"
    plt.close("all")


def test_class_names_wherever_labels_are_shown(lenet, digits):
    _, X_test, _, y_test = digits
    names = [f"digit {d}" for d in range(10)]
    display = MisclassifiedDisplay.from_estimator(lenet, X_test[:100], y_test[:100],
                                                  max_images=3, class_names=names)
    for axis in display.ax_:
        true, guess = axis.get_title().split(" / ")
        assert true in names and guess in names
    with pytest.raises(ValueError, match="class_names has 2 names for 10 classes"):
        plot_misclassified(lenet, X_test[:100], y_test[:100], class_names=["a", "b"])
    plt.close("all")
