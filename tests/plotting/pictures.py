"""What the plotting tests read back from a figure: its pixels and its panels."""

import io
import warnings

import numpy as np
import pytest


def rendered(fig) -> np.ndarray:
    """The figure as a PNG, read back as an (H, W, 4) float array."""
    import matplotlib.image as mpimg

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    buffer.seek(0)
    return mpimg.imread(buffer)


def assert_has_content(fig):
    pixels = rendered(fig)[..., :3]
    assert pixels.std() > 0.05, "the picture is (nearly) one flat colour"


def panel_arrays(fig) -> np.ndarray:
    return np.stack([np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images])


def unclipped(fig) -> bool:
    """Whether everything drawn (titles, labels, tick labels, text) lies inside the
    figure: its tight bounding box fits in the figure's."""
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())       # inches
    width, height = fig.get_size_inches()
    slack = 0.02
    return (drawn.x0 >= -slack and drawn.y0 >= -slack and drawn.x1 <= width + slack
            and drawn.y1 <= height + slack)


def assert_shortcut(shortcut, display, caller: str, match: str):
    """``shortcut()`` (a deprecated ``plot_*`` function) warns one FutureWarning that
    matches ``match``, attributed to the ``caller`` file, and returns a Figure drawn
    as ``display`` (the Display it stands for) draws its figure: the same number of
    axes holding the same images and titles."""
    from matplotlib.figure import Figure

    with pytest.warns(FutureWarning, match=match) as record:
        fig = shortcut()
    assert len(record) == 1 and record[0].filename == caller  # points at the call
    assert isinstance(fig, Figure) and type(fig) is type(display.figure_)
    assert len(fig.axes) == len(display.figure_.axes)
    for mine, theirs in zip(fig.axes, display.figure_.axes, strict=True):
        assert mine.get_title() == theirs.get_title()
        assert len(mine.images) == len(theirs.images)
        for image, expected in zip(mine.images, theirs.images, strict=True):
            np.testing.assert_array_equal(image.get_array(), expected.get_array())
    return fig


def no_warning(function, *args, **kwargs):
    """``function(*args, **kwargs)`` with every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)
