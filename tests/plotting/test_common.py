"""sklearn_cnn.plotting._common: the panel grids and image helpers every picture uses."""

import numpy as np
import pytest

plt = pytest.importorskip("matplotlib.pyplot")

from sklearn_cnn.plotting._common import _deprecated, _displayable, _grid, _panels  # noqa: E402


def test_a_grid_has_one_axis_per_panel_and_no_spare_cells():
    fig, axes = _grid(plt, 10, "ten", max_cols=4)
    assert len(axes) == 10 and len(fig.axes) == 10  # 3 rows of 4, two cells removed
    assert fig._suptitle.get_text() == "ten"
    assert all(not axis.get_xticks().size for axis in axes)


def test_panels_draw_on_the_users_axes_or_refuse_too_few():
    fig, own = plt.subplots(2, 3)
    drawn_on, axes = _panels(4, "title", own)
    assert drawn_on is fig and list(axes) == list(own.ravel()[:4])
    with pytest.raises(ValueError, match="at least 7 Axes"):
        _panels(7, "title", own)


def test_images_become_what_imshow_draws():
    rng = np.random.default_rng(0)
    gray = rng.random((2, 1, 5, 5))
    np.testing.assert_array_equal(_displayable(gray), gray[:, 0])
    colour = rng.random((2, 3, 5, 5)) * 7 - 2
    shown = _displayable(colour)
    assert shown.shape == (2, 5, 5, 3)
    np.testing.assert_allclose(shown.min(axis=(1, 2, 3)), 0)  # each image to [0, 1]
    np.testing.assert_allclose(shown.max(axis=(1, 2, 3)), 1)
    np.testing.assert_allclose(_displayable(rng.random((1, 2, 5, 5))).shape, (1, 5, 5))


def test_a_deprecated_shortcut_names_its_replacement():
    with pytest.warns(FutureWarning, match="plot_x is deprecated.*use XDisplay"):
        _deprecated("plot_x", "XDisplay.from_estimator(...).figure_")
