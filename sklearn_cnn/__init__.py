"""sklearn-cnn: convolutional neural networks as scikit-learn estimators."""

from . import layers
from ._classifier import CNNClassifier
from ._onnx_hook import register_when_skl2onnx_is_imported
from ._regressor import CNNRegressor
from .architectures import list_architectures, register_architecture
from .layers import conv_output_size
from .persistence import load, save
from .summary import Summary, summary

__version__ = "0.1.0"

# skl2onnx finds converters in its own registry only: fill it when skl2onnx is (or
# gets) imported, without importing it here
register_when_skl2onnx_is_imported()

__all__ = ["CNNClassifier", "CNNRegressor", "Summary", "__version__", "conv_output_size",
           "layers", "list_architectures", "load", "register_architecture", "save",
           "summary"]
