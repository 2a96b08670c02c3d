"""Pictures of a convolution and of a fitted CNN: filters, feature maps, loss curve,
misclassified images, explanations (saliency, Grad-CAM, occlusion).

Each picture is a scikit-learn style Display: ``XDisplay.from_estimator(clf, ...)``
(``ConvolutionDisplay.from_arrays(image, kernel)`` for the teaching picture)
computes and draws, ``.plot(ax=...)`` draws again on axes of your own figure, and
``.figure_`` / ``.ax_`` hold what was drawn, so a picture composes into a figure of
your own. The modules follow the subjects: :mod:`~sklearn_cnn.plotting.convolution`
(the teaching picture), :mod:`~sklearn_cnn.plotting.network` (a fitted network's
filters and feature maps), :mod:`~sklearn_cnn.plotting.training` (loss curve,
mistakes) and :mod:`~sklearn_cnn.plotting.explanations`.

The Displays are the one picture API, as in scikit-learn, which replaced its
``plot_*`` functions (``plot_confusion_matrix``...) by Display objects
(``ConfusionMatrixDisplay.from_estimator``): a function returning a Figure cannot be
drawn again on other axes nor keep the numbers it drew, and two APIs per picture
means two signatures to keep in step. The ``plot_*`` functions here are deprecated
shortcuts: each warns a FutureWarning naming its Display call and returns that
Display's ``figure_``; they will be removed in a future release.
:func:`feature_maps` is a computation (it returns the activations as an array), not a
picture, and stays.

matplotlib is optional (``pip install 'sklearn-cnn[plot]'``) and imported only when a
picture is drawn. Every picture is drawn on a new figure (or on the axes given); none
calls ``plt.show()``. For a confusion matrix, scikit-learn's
``ConfusionMatrixDisplay.from_estimator(clf, X, y)`` works with the estimator as is.

The numbers drawn are the package's own: the teaching convolution is computed by a
one-layer network of the package (a ``Conv2d`` on the NumPy backend), and the filters
and feature maps of a fitted estimator are read from its fitted network,
``clf.network_``, whose layers run on the backend that trained the model.
"""

from .convolution import ConvolutionDisplay, plot_convolution
from .explanations import ExplanationDisplay, plot_explanation
from .network import (
    FeatureMapsDisplay,
    FiltersDisplay,
    feature_maps,
    plot_feature_maps,
    plot_filters,
)
from .training import LossCurveDisplay, MisclassifiedDisplay, plot_loss_curve, plot_misclassified

__all__ = ["ConvolutionDisplay", "ExplanationDisplay", "FeatureMapsDisplay", "FiltersDisplay",
           "LossCurveDisplay", "MisclassifiedDisplay", "feature_maps", "plot_convolution",
           "plot_explanation", "plot_feature_maps", "plot_filters", "plot_loss_curve",
           "plot_misclassified"]
