"""sklearn_cnn.plotting.network: the filters and feature maps drawn are the fitted
network's own, computed by the backend that trained it."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from pictures import (  # noqa: E402
    assert_has_content,
    assert_shortcut,
    no_warning,
    panel_arrays,
    unclipped,
)
from recipes import LENET  # noqa: E402
from reference import conv2d  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sklearn_cnn import CNNClassifier  # noqa: E402
from sklearn_cnn.plotting import (  # noqa: E402
    FeatureMapsDisplay,
    FiltersDisplay,
    feature_maps,
    plot_feature_maps,
    plot_filters,
)


def filters_figure(clf, layer=0, **kwargs):
    return FiltersDisplay.from_estimator(clf, layer, **kwargs).figure_


def maps_figure(clf, image, layer=0, **kwargs):
    return FeatureMapsDisplay.from_estimator(clf, image, layer, **kwargs).figure_


# ---------------------------------------------------------------------------- filters

def test_filters_show_the_learned_kernels(lenet):
    weights = lenet.get_weights()
    first = filters_figure(lenet, layer=0)
    assert len(first.axes) == 6
    np.testing.assert_array_equal(panel_arrays(first), weights["0.weight"][:, 0])
    assert_has_content(first)

    second = filters_figure(lenet, layer=1)  # 16 kernels over 6 input channels
    np.testing.assert_allclose(panel_arrays(second), weights["2.weight"].mean(axis=1))
    assert "mean over 6 input channels" in second._suptitle.get_text()
    by_key = filters_figure(lenet, layer="2.weight", max_filters=4)
    np.testing.assert_array_equal(panel_arrays(by_key), panel_arrays(second)[:4])


@pytest.mark.parametrize(("layer", "match"), [
    (2, r"int in \[0, 1\] \(this network has 2 Conv2d layers\)"),
    (-1, r"\[0, 1\]"),
    (True, r"\[0, 1\]"),
    ("6", r"not a Conv2d layer; the convolutions' keys are \['0', '2'\]"),
])
def test_filters_reject_a_bad_layer(lenet, layer, match):
    with pytest.raises(ValueError, match=match):
        FiltersDisplay.from_estimator(lenet, layer=layer)


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


def test_feature_maps_are_computed_in_the_networks_dtype(digits):
    """A model that trained in float64 gives float64 maps, to float64's precision."""
    X_train, X_test, y_train, _ = digits
    clf = CNNClassifier(max_iter=1, random_state=0, **LENET).fit(
        X_train[:50].astype(np.float64), y_train[:50])
    assert clf.network_.dtype == np.float64
    weights = clf.get_weights()
    maps = feature_maps(clf, X_test[0], layer=0)    # a float32 image, cast to float64
    assert maps.dtype == np.float64
    expected = conv2d(X_test[:1, None].astype(np.float64), weights["0.weight"],
                      weights["0.bias"], (1, 1), (2, 2, 2, 2))[0]
    np.testing.assert_allclose(maps, expected, rtol=1e-12, atol=1e-12)


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
    conv = clf.network_.layer("3.body.0").spec
    before = feature_maps(clf, X_test[0], layer="2")          # the block's input
    weights = clf.get_weights()
    bias = weights.get("3.body.0.bias", np.zeros(conv.out_channels))
    expected = conv2d(before[None].astype(np.float64), weights["3.body.0.weight"], bias,
                      conv.strides, conv.resolve_padding(before.shape))[0]
    np.testing.assert_allclose(feature_maps(clf, X_test[0], layer="3.body.0"), expected,
                               atol=1e-5)
    assert len(filters_figure(clf, layer="3.body.0").axes) == conv.out_channels


def test_feature_maps_render_on_each_backend(backend, digits):
    X_train, X_test, y_train, _ = digits
    clf = CNNClassifier(max_iter=1, backend=backend, random_state=0, **LENET).fit(
        X_train[:200], y_train[:200])
    fig = maps_figure(clf, X_test[0], layer="1")
    maps = panel_arrays(fig)
    assert maps.shape == (6, 8, 8)
    assert "after layer 1: ReLU" in fig._suptitle.get_text()
    assert_has_content(fig)
    if backend == "torch":  # the maps are what the trained module computes
        import torch

        with torch.no_grad():
            module_out = clf.network_.model.module_[:2](torch.from_numpy(X_test[:1, None]))
        np.testing.assert_allclose(maps, module_out[0].numpy(), atol=1e-5)


def test_feature_maps_agree_across_backends(lenet, digits):
    """Each backend computes the maps of its own model; the same weights give the same
    maps, to float32 rounding."""
    pytest.importorskip("skorch")
    on_torch = lenet.to_backend("torch")
    image = digits[1][3]
    for layer in (0, 1, "3", "4"):
        np.testing.assert_allclose(panel_arrays(maps_figure(on_torch, image, layer)),
                                   panel_arrays(maps_figure(lenet, image, layer)),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("layer", "match"), [
    ("6", r"outputs a vector of shape \(120,\), not feature maps"),
    ("99", "not a layer key of this network"),
    (5, r"\[0, 1\]"),
])
def test_feature_maps_reject_a_bad_layer(lenet, digits, layer, match):
    with pytest.raises(ValueError, match=match):
        FeatureMapsDisplay.from_estimator(lenet, digits[1][0], layer=layer)
    with pytest.raises(ValueError, match=match):
        feature_maps(lenet, digits[1][0], layer=layer)


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("draw", [
    lambda clf, X: FiltersDisplay.from_estimator(clf),
    lambda clf, X: FeatureMapsDisplay.from_estimator(clf, X[0]),
    lambda clf, X: feature_maps(clf, X[0]),
], ids=["filters", "feature_maps_display", "feature_maps"])
def test_unfitted_estimator_raises_not_fitted(draw, digits):
    with pytest.raises(NotFittedError):
        draw(CNNClassifier(), digits[1][:5])


def test_custom_torch_module_has_no_filters_or_maps(digits):
    torch = pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from sklearn_cnn.plotting import LossCurveDisplay, MisclassifiedDisplay

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
    for draw in (lambda: FiltersDisplay.from_estimator(clf),
                 lambda: FeatureMapsDisplay.from_estimator(clf, X_test[0]),
                 lambda: feature_maps(clf, X_test[0])):
        with pytest.raises(ValueError, match=r"custom torch\.nn\.Module"):
            draw()
    assert_has_content(LossCurveDisplay.from_estimator(clf).figure_)  # these need no specs
    MisclassifiedDisplay.from_estimator(clf, X_test[:50], y_test[:50])


# ------------------------------------------------------------------------- displays

def test_displays_compose_into_a_given_figure(lenet, digits):
    X_test = digits[1]
    fig, grid = plt.subplots(2, 8)
    filters = FiltersDisplay.from_estimator(lenet, layer=0, ax=grid[0])
    maps = FeatureMapsDisplay.from_estimator(lenet, X_test[0], layer=0, ax=grid[1, :6])
    for display in (filters, maps):
        assert display.figure_ is fig
    assert list(filters.ax_) == list(grid[0, :6])
    assert grid[1, 0].images and not grid[1, 7].images
    with pytest.raises(ValueError, match="at least 6 Axes"):
        FiltersDisplay.from_estimator(lenet, layer=0, ax=grid[0, :3])


def test_display_figures_are_whole(lenet, digits):
    figures = [filters_figure(lenet), maps_figure(lenet, digits[1][0])]
    assert all(isinstance(figure, Figure) for figure in figures)
    assert all(unclipped(figure) for figure in figures)


def test_titles_name_a_convolution_by_both_of_its_numbers(lenet, digits):
    X_test = digits[1]
    second = FiltersDisplay.from_estimator(lenet, layer=1)
    assert second.title.startswith("Filters of convolution 1 (layer 2): Conv2d 16@5x5")
    assert FiltersDisplay.from_estimator(lenet, layer="2").title == second.title
    maps = FeatureMapsDisplay.from_estimator(lenet, X_test[0], layer=1)
    assert maps.title.startswith("Feature maps after convolution 1 (layer 2)")
    relu = FeatureMapsDisplay.from_estimator(lenet, X_test[0], layer="1")
    assert relu.title.startswith("Feature maps after layer 1: ReLU")


# ------------------------------------------------------------------ deprecated shortcuts

def test_plot_filters_is_a_deprecated_shortcut(lenet):
    display = FiltersDisplay.from_estimator(lenet, "2", max_filters=5)
    assert_shortcut(lambda: plot_filters(lenet, "2", max_filters=5), display, __file__,
                    r"plot_filters is deprecated and will be removed in a future release; "
                    r"use FiltersDisplay\.from_estimator\(clf, \.\.\.\)\.figure_")


def test_plot_feature_maps_is_a_deprecated_shortcut(lenet, digits):
    image = digits[1][0]
    display = FeatureMapsDisplay.from_estimator(lenet, image, 1, max_maps=3)
    assert_shortcut(lambda: plot_feature_maps(lenet, image, 1, max_maps=3), display,
                    __file__, r"plot_feature_maps is deprecated .*; use "
                    r"FeatureMapsDisplay\.from_estimator\(clf, image, \.\.\.\)\.figure_")


def test_feature_maps_is_not_deprecated(lenet, digits):
    maps = no_warning(feature_maps, lenet, digits[1][0], layer="1")
    np.testing.assert_array_equal(
        maps, FeatureMapsDisplay.from_estimator(lenet, digits[1][0], "1").maps)
