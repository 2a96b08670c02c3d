"""sklearn-cnn: convolutional neural networks as scikit-learn estimators."""

from . import layers
from ._classifier import CNNClassifier
from ._regressor import CNNRegressor
from .architectures import list_architectures, register_architecture
from .layers import conv_output_size
from .persistence import load
from .summary import Summary, summary

__version__ = "0.1.0"

__all__ = ["CNNClassifier", "CNNRegressor", "Summary", "__version__", "conv_output_size",
           "layers", "list_architectures", "load", "register_architecture", "summary"]
