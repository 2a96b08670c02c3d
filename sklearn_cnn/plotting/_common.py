"""What the pictures share: the lazy matplotlib import, panel grids, colour scales,
label text and the deprecation of the ``plot_*`` shortcuts."""

from __future__ import annotations

import math
import warnings

import numpy as np

PANEL_INCHES = 1.3  # side of one small image in a grid of filters, maps or digits


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("sklearn_cnn.plotting needs matplotlib: "
                          "pip install 'sklearn-cnn[plot]' (in a clone of the "
                          "repository: pip install -e '.[plot]')") from exc
    return plt


def _deprecated(function: str, replacement: str) -> None:
    """Warn that the ``plot_*`` shortcut ``function`` goes away for ``replacement``
    (the Display call that does the same), at the caller's line."""
    warnings.warn(f"{function} is deprecated and will be removed in a future release; "
                  f"use {replacement}", FutureWarning, stacklevel=3)


def _diverging(ax, values: np.ndarray, vmax: float | None = None):
    """Show values with zero in the middle of a red-blue scale (negative blue)."""
    vmax = float(np.abs(values).max()) if vmax is None else vmax
    vmax = vmax if vmax > 0 else 1.0
    return ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax)


def _write_values(ax, values: np.ndarray) -> None:
    """Write each value in its cell (a small kernel reads better with its numbers)."""
    rows, cols = np.indices(values.shape)
    strong = np.abs(values) > 0.6 * np.abs(values).max()  # dark cells: white text
    for i, j, value, dark in zip(rows.ravel(), cols.ravel(), values.ravel(), strong.ravel(),
                                 strict=True):
        ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=10,
                color="white" if dark else "black")


def _panels(n_panels: int, title: str, ax, max_cols: int = 8):
    """``(figure, axes)``: ``n_panels`` image axes, the first of ``ax`` (a user's
    figure; the title then goes on the first panel's figure only if it has none) or
    those of a new grid."""
    plt = _pyplot()
    if ax is None:
        return _grid(plt, n_panels, title, max_cols)
    axes = np.asarray(ax, dtype=object).ravel()
    if len(axes) < n_panels:
        raise ValueError(f"ax must hold at least {n_panels} Axes (one per panel), got "
                         f"{len(axes)}")
    for axis in axes[:n_panels]:
        axis.set_xticks([])
        axis.set_yticks([])
    return axes[0].figure, axes[:n_panels]


def _grid(plt, n_panels: int, title: str, max_cols: int = 8):
    """A figure with ``n_panels`` small image axes (spare grid cells removed)."""
    n_cols = min(n_panels, max_cols)
    n_rows = math.ceil(n_panels / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained",
                             figsize=(PANEL_INCHES * n_cols + 0.8,
                                      PANEL_INCHES * n_rows + 0.6))
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes.ravel()[n_panels:]:
        axis.remove()
    _widen_for(fig, fig.suptitle(title))
    return fig, axes.ravel()[:n_panels]


def _widen_for(fig, text, margin_inches: float = 0.3) -> None:
    """Widen ``fig`` until ``text`` (its title) fits whole: a grid of one or two
    panels is narrower than a title of a few words, and constrained layout moves
    axes, never the figure's edges."""
    needed = text.get_window_extent().width / fig.dpi + margin_inches
    if needed > fig.get_figwidth():
        fig.set_figwidth(needed)


def _displayable(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> what imshow draws: (N, H, W) gray, or (N, H, W, 3|4) colour
    scaled to [0, 1] per image; other channel counts are averaged to gray."""
    channels = images.shape[1]
    if channels not in (3, 4):
        return images.mean(axis=1) if channels > 1 else images[:, 0]
    colour = images.transpose(0, 2, 3, 1)
    low = colour.min(axis=(1, 2, 3), keepdims=True)
    span = colour.max(axis=(1, 2, 3), keepdims=True) - low
    return (colour - low) / np.where(span > 0, span, 1)


def _label_text(estimator, value, class_names) -> str:
    """A prediction as a title: a class (by its name when given) or a value."""
    if class_names is None or not hasattr(estimator, "classes_"):
        return f"{value:.3g}" if isinstance(value, float | np.floating) else str(value)
    names = list(class_names)
    if len(names) != len(estimator.classes_):
        raise ValueError(f"class_names has {len(names)} names for "
                         f"{len(estimator.classes_)} classes")
    return str(names[int(np.flatnonzero(estimator.classes_ == value)[0])])
