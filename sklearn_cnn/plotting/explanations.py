"""Pictures of what a fitted network looks at: images beside their saliency, Grad-CAM
and occlusion maps (computed by :mod:`sklearn_cnn.inspection`)."""

from __future__ import annotations

import numpy as np

from ._common import PANEL_INCHES, _deprecated, _displayable, _label_text, _pyplot

__all__ = ["ExplanationDisplay", "plot_explanation"]

#: how each method's map is drawn: colour map, and whether it is signed (centred on 0)
_MAP_STYLES = {"saliency": ("inferno", False), "grad_cam": ("inferno", False),
               "occlusion": ("RdBu_r", True)}


class ExplanationDisplay:
    """Images beside their explanation maps, as a scikit-learn Display.

    One row per image: the image, then for each method its map and the map laid over
    the image. Build it with :meth:`from_estimator` (which computes the maps with
    :mod:`sklearn_cnn.inspection`), or from maps of your own, then :meth:`plot`.

    Parameters
    ----------
    images : ndarray of shape (n_images, C, H, W)
    maps : dict of str to ndarray of shape (n_images, H, W)
        Method name (``"saliency"``, ``"grad_cam"``, ``"occlusion"`` or any other)
        to its maps.
    titles : list of str, default=None
        One title per image (the predicted label, say).

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : ndarray of matplotlib Axes, shape (n_images, 1 + 2 * n_methods)

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import ExplanationDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = CNNClassifier("lenet", max_iter=2, random_state=0).fit(X[:300], y[:300])
    >>> display = ExplanationDisplay.from_estimator(clf, X[:2], methods=["saliency"])
    >>> display.ax_.shape
    (2, 3)
    """

    def __init__(self, images, maps: dict, titles=None):
        self.images = np.asarray(images)
        self.maps = {name: np.asarray(values) for name, values in maps.items()}
        self.titles = None if titles is None else [str(t) for t in titles]

    @classmethod
    def from_estimator(cls, estimator, X, *, methods=("saliency", "grad_cam", "occlusion"),
                       target=None, class_names=None, ax=None) -> ExplanationDisplay:
        """Compute the maps of ``methods`` for the images X and plot them.

        Parameters
        ----------
        estimator : fitted CNNClassifier or CNNRegressor
        X : array-like of images, in any layout ``fit`` accepts
        methods : sequence of {"saliency", "grad_cam", "occlusion"}
        target : class label, output index, array of one per image, or None
            What to explain (see :func:`sklearn_cnn.inspection.input_gradient`).
        class_names : sequence of str, default=None
            Names of a classifier's ``classes_``, in their order, for the titles.
        ax : array of matplotlib Axes of shape (n_images, 1 + 2 * len(methods)), \
default=None
            Where to draw; by default a new figure.

        Returns
        -------
        ExplanationDisplay
        """
        from .. import inspection

        known = {"saliency": inspection.saliency, "grad_cam": inspection.grad_cam,
                 "occlusion": inspection.occlusion}
        unknown = [m for m in methods if m not in known]
        if unknown or not len(methods):
            raise ValueError(f"methods must be some of {list(known)}; got {list(methods)}")
        images = inspection.fitted_images(estimator, X)[1]
        maps = {m: known[m](estimator, images, target) for m in methods}
        predicted = estimator.predict(images)
        titles = [_label_text(estimator, value, class_names) for value in predicted]
        return cls(images, maps, titles).plot(ax=ax)

    def plot(self, ax=None) -> ExplanationDisplay:
        """Draw the images and maps on ``ax`` (an array of Axes of shape
        ``(n_images, 1 + 2 * n_methods)``) or on a new figure; returns ``self``."""
        plt = _pyplot()
        n_images, n_columns = len(self.images), 1 + 2 * len(self.maps)
        if ax is None:
            fig, axes = plt.subplots(n_images, n_columns, squeeze=False, layout="constrained",
                                     figsize=(PANEL_INCHES * n_columns + 0.4,
                                              PANEL_INCHES * n_images + 0.6))
        else:
            axes = np.asarray(ax, dtype=object).reshape(-1)
            if axes.size != n_images * n_columns:
                raise ValueError(f"ax must hold {n_images} x {n_columns} Axes (one row per "
                                 f"image: the image, then map and overlay per method); "
                                 f"got {axes.size}")
            axes = axes.reshape(n_images, n_columns)
            fig = axes[0, 0].figure
        pictures = _displayable(self.images if self.images.ndim == 4 else self.images[:, None])
        for row, picture in enumerate(pictures):
            axes[row, 0].imshow(picture, cmap="gray")
            axes[row, 0].set_title(self.titles[row] if self.titles else "image", fontsize=9)
            for column, (name, values) in enumerate(self.maps.items()):
                cmap, signed = _MAP_STYLES.get(name, ("inferno", False))
                limit = float(np.abs(values[row]).max()) or 1.0
                low = -limit if signed else 0.0
                map_ax, overlay_ax = axes[row, 1 + 2 * column], axes[row, 2 + 2 * column]
                map_ax.imshow(values[row], cmap=cmap, vmin=low, vmax=limit)
                overlay_ax.imshow(picture, cmap="gray")
                overlay_ax.imshow(values[row], cmap=cmap, vmin=low, vmax=limit, alpha=0.55)
                if row == 0:
                    map_ax.set_title(name.replace("_", "-"), fontsize=9)
                    overlay_ax.set_title("overlay", fontsize=9)
        for axis in axes.ravel():
            axis.set_xticks([])
            axis.set_yticks([])
        self.figure_, self.ax_ = fig, axes
        return self


def plot_explanation(estimator, X, *, methods=("saliency", "grad_cam", "occlusion"),
                     target=None, class_names=None):
    """Draw images beside their saliency, Grad-CAM and occlusion maps.

    Deprecated: use ``ExplanationDisplay.from_estimator(estimator, X, ...).figure_``;
    this shortcut warns a FutureWarning and will be removed in a future release.

    Parameters
    ----------
    estimator : fitted CNNClassifier or CNNRegressor
    X : array-like of images, in any layout ``fit`` accepts
    methods : sequence of {"saliency", "grad_cam", "occlusion"}
    target : class label, output index, array of one per image, or None
    class_names : sequence of str, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    _deprecated("plot_explanation",
                "ExplanationDisplay.from_estimator(estimator, X, ...).figure_")
    return ExplanationDisplay.from_estimator(estimator, X, methods=methods, target=target,
                                             class_names=class_names).figure_
