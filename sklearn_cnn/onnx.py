"""ONNX export: ``import sklearn_cnn.onnx`` teaches skl2onnx this package's estimators.

``import sklearn_cnn`` does it too, as soon as skl2onnx is imported (before or
after; sklearn_cnn never imports skl2onnx itself), and :func:`to_onnx` here
registers the converters before converting, whatever was imported.

After the import, ``skl2onnx.to_onnx(model, X_sample)`` converts a fitted
:class:`~sklearn_cnn.CNNClassifier` or :class:`~sklearn_cnn.CNNRegressor`, alone or
as the last step of a Pipeline after scikit-learn's own transformers (MinMaxScaler,
StandardScaler...) and this package's ``ChannelStandardizer``, ``Resize``,
``ImagesToFlat`` and ``FlatToImages``, into one ONNX graph that onnxruntime runs
without NumPy, torch or this package. ``pip install 'sklearn-cnn[onnx]'`` (onnx,
skl2onnx, onnxruntime).

The graph is made from the layer specs (``specs_``) and the canonical weights
(``get_weights()``), so a model of either backend exports the same way: Conv,
MaxPool / AveragePool (with their padding), GlobalAveragePool, adaptive average
pooling as two MatMul with averaging matrices, BatchNormalization with the running
statistics, Gemm, Relu / LeakyRelu / Tanh / Sigmoid, Add for residual blocks,
Flatten, and at the input Reshape (flat rows), Unsqueeze ``(n, H, W)``, Transpose
(channels last) and, for uint8 images, the scaling by 1/255 the estimators apply.
A custom ``torch.nn.Module`` has no specs and cannot be exported.

Outputs follow skl2onnx's conventions. A classifier gives ``label`` (the original
labels: int64 for integer and bool labels, strings for strings) and
``probabilities``, by default as a list of dicts (ZipMap); pass
``options={"zipmap": False}`` for a plain ``(n, n_classes)`` tensor. A regressor
gives ``variable``, ``(n, n_outputs)``. The batch axis is dynamic. The graph computes
in float32 whatever the input type (onnxruntime's CPU convolutions are float32
only): a network fitted in float64 runs rounded to float32. Operators come
from the default ONNX domain up to opset :data:`OPSET` and ``ai.onnx.ml``
(ArrayFeatureExtractor, for the labels).
"""

from __future__ import annotations

import numpy as np
import skl2onnx
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import (
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from sklearn.utils.validation import check_is_fitted

from . import augment as augmentations
from . import layers as S
from ._classifier import CNNClassifier
from ._regressor import CNNRegressor
from .backends import adaptive_pool_matrix
from .preprocessing import ChannelStandardizer, FlatToImages, ImagesToFlat, Resize, _size_pair

#: the opset the converters are tested with (onnxruntime runs it)
OPSET = 18

_ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT,
               np.dtype(np.float64): TensorProto.DOUBLE}
_ACTIVATIONS = {S.ReLU: "Relu", S.Tanh: "Tanh", S.Sigmoid: "Sigmoid"}


class _Graph:
    """Adds nodes and initializers to a skl2onnx container under unique names."""

    def __init__(self, scope, container, dtype):
        self.scope, self.container, self.dtype = scope, container, np.dtype(dtype)

    def name(self, hint: str) -> str:
        return self.scope.get_unique_variable_name(hint)

    def constant(self, hint: str, values) -> str:
        array = np.asarray(values)
        kind = {"f": _ONNX_TYPES.get(array.dtype, TensorProto.FLOAT), "i": TensorProto.INT64,
                "U": TensorProto.STRING, "O": TensorProto.STRING}[array.dtype.kind]
        if kind == TensorProto.INT64:
            array = array.astype(np.int64)
        content = array.ravel().tolist() if kind == TensorProto.STRING else array.ravel()
        name = self.name(hint)
        self.container.add_initializer(name, kind, list(array.shape), content)
        return name

    def weight(self, hint: str, values) -> str:
        return self.constant(hint, np.asarray(values, dtype=self.dtype))

    def node(self, op: str, inputs: list[str], hint: str | None = None, outputs=None,
             domain: str = "", **attrs) -> str:
        output = outputs or self.name(hint or op.lower())
        self.container.add_node(op, inputs, output, op_domain=domain,
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return output


def _pair(value) -> list[int]:
    return [int(v) for v in (value if isinstance(value, tuple) else (value, value))]


def _layers(graph: _Graph, specs, x: str, shape, weights: dict, prefix: str = "") -> str:
    """The ONNX nodes of ``specs`` applied to ``x`` of ``shape`` (C, H, W)."""
    for index, spec in enumerate(specs):
        key = f"{prefix}{index}"
        x = _layer(graph, spec, x, shape, weights, key)
        shape = spec.output_shape(shape)
    return x


def _layer(graph: _Graph, spec, x: str, shape, weights: dict, key: str) -> str:
    own = {name: weights[f"{key}.{name}"] for name in
           [*spec.param_shapes(shape), *spec.buffer_shapes(shape)]}
    if isinstance(spec, S.Conv2d):
        top, bottom, left, right = spec.resolve_padding(shape)
        inputs = [x, graph.weight(f"{key}.weight", own["weight"])]
        if "bias" in own:
            inputs.append(graph.weight(f"{key}.bias", own["bias"]))
        return graph.node("Conv", inputs, "conv", kernel_shape=_pair(spec.kernel_size),
                          strides=_pair(spec.stride), pads=[top, left, bottom, right])
    if isinstance(spec, (S.MaxPool2d, S.AvgPool2d)):
        pads = [spec.padding] * 4
        attrs = {} if isinstance(spec, S.MaxPool2d) else {"count_include_pad": 1}
        return graph.node("MaxPool" if isinstance(spec, S.MaxPool2d) else "AveragePool",
                          [x], "pool", kernel_shape=list(spec.kernel),
                          strides=list(spec.strides), pads=pads, **attrs)
    if isinstance(spec, S.AdaptiveAvgPool2d):  # out = P_h @ x @ P_w^T
        _, ho, wo = spec.output_shape(shape)
        rows = graph.weight("pool_rows", adaptive_pool_matrix(shape[1], ho, np.float64))
        cols = graph.weight("pool_cols", adaptive_pool_matrix(shape[2], wo, np.float64).T)
        return graph.node("MatMul", [graph.node("MatMul", [rows, x]), cols], "adaptive")
    if isinstance(spec, S.GlobalAvgPool2d):
        return graph.node("Flatten", [graph.node("GlobalAveragePool", [x])], axis=1)
    if isinstance(spec, S.Flatten):
        return graph.node("Flatten", [x], axis=1)
    if isinstance(spec, S.Linear):
        inputs = [x, graph.weight(f"{key}.weight", own["weight"])]
        if "bias" in own:
            inputs.append(graph.weight(f"{key}.bias", own["bias"]))
        return graph.node("Gemm", inputs, "dense", transB=1)
    if isinstance(spec, S.BatchNorm):  # inference form: the running statistics
        names = [graph.weight(f"{key}.{n}", own[n])
                 for n in ("weight", "bias", "running_mean", "running_var")]
        return graph.node("BatchNormalization", [x, *names], "batchnorm",
                          epsilon=float(spec.eps))
    if isinstance(spec, S.Dropout):  # the identity at prediction time
        return x
    if isinstance(spec, S.LeakyReLU):
        return graph.node("LeakyRelu", [x], alpha=float(spec.negative_slope))
    if type(spec) in _ACTIVATIONS:
        return graph.node(_ACTIVATIONS[type(spec)], [x])
    if isinstance(spec, S.Residual):
        body = _layers(graph, spec.body, x, shape, weights, f"{key}.body.")
        shortcut = _layers(graph, spec.shortcut, x, shape, weights, f"{key}.shortcut.")
        return graph.node("Add", [body, shortcut], "residual")
    raise NotImplementedError(f"no ONNX conversion for {type(spec).__name__}")  # pragma: no cover


def _input_images(graph: _Graph, input_shape, variable) -> str:
    """The graph input as float (N, C, H, W) images in the graph's dtype, laid out as
    the package reads the sample's layout (``input_shape``: the fitted (C, H, W))."""
    c, h, w = input_shape
    dims = list(variable.type.shape)[1:]
    _check_sample_shape(dims, input_shape)
    x = graph.node("Cast", [variable.onnx_name], "cast", to=_ONNX_TYPES[graph.dtype])
    if variable.type.__class__.__name__ == "UInt8TensorType":  # as at fit time
        x = graph.node("Mul", [x, graph.weight("scale", 1 / 255)], "scaled")
    if len(dims) == 1:
        return graph.node("Reshape", [x, graph.constant("shape", [-1, c, h, w])], "images")
    if len(dims) == 2:
        return graph.node("Unsqueeze", [x, graph.constant("axis", [1])], "images")
    if dims == [c, h, w]:
        return x
    if dims == [h, w, c]:
        return graph.node("Transpose", [x], "images", perm=[0, 3, 1, 2])
    raise ValueError(f"ONNX input of shape {['N', *dims]} does not match the images of "
                     f"shape {tuple(input_shape)} (C, H, W) that were fitted")


def _check_sample_shape(dims: list, input_shape) -> None:
    """Refuse, at export, an input whose images are not of the fitted shape (the graph
    would fail later inside onnxruntime, or label images ``predict`` refuses)."""
    c, h, w = input_shape
    if any(not isinstance(d, int) for d in dims):  # a dynamic axis: nothing to check
        return
    fits = {1: dims == [c * h * w], 2: c == 1 and dims == [h, w],
            3: dims in ([c, h, w], [h, w, c])}.get(len(dims), False)
    if not fits:
        raise ValueError(f"the ONNX input holds samples of shape {tuple(dims)}, but the "
                         f"model was fitted on images of shape {tuple(input_shape)} "
                         "(C, H, W): export with a sample of the fitted image size")


def _float_type(variable):
    """The float tensor type a step outputs: float32 (see :func:`_network_output`)."""
    return FloatTensorType


def _network_output(scope, operator, container) -> tuple[_Graph, str, object]:
    estimator = operator.raw_operator
    estimator.network_.require_specs("ONNX export")
    # float32 throughout: onnxruntime's CPU kernels (Conv, pooling) are float32 only, so
    # a network fitted in float64 runs rounded to float32
    weights = estimator.get_weights()
    graph = _Graph(scope, container, np.float32)
    images = _input_images(graph, estimator.input_shape_, operator.inputs[0])
    views = _views(estimator)
    if views == "flip":  # the mirrored images after the images
        w = estimator.input_shape_[2]
        mirrored = graph.node("Slice", [images, graph.constant("start", [w - 1]),
                                        graph.constant("end", [-w - 1]),
                                        graph.constant("axis", [3]),
                                        graph.constant("step", [-1])], "mirrored")
        images = graph.node("Concat", [images, mirrored], "both", axis=0)
    elif views == "shift":  # the images, then moved half a pixel down, up, right, left
        moved = [graph.node("AveragePool", [images], "moved", kernel_shape=[2, 1] if rows
                            else [1, 2], pads=[int(rows == 1), int(cols == 1),
                                               int(rows == -1), int(cols == -1)],
                            count_include_pad=1)  # the mean with a neighbour, 0 outside
                 for rows, cols in augmentations.HALF_PIXEL_MOVES]
        images = graph.node("Concat", [images, *moved], "all", axis=0)
    return graph, _layers(graph, estimator.specs_, images, estimator.input_shape_,
                          weights), estimator


def _views(estimator) -> str | None:
    """The copies of each image ``test_time_augment`` adds: "flip", "shift" or None."""
    return augmentations.resolve_test_time(estimator.test_time_augment,
                                           estimator.input_shape_[1:])


def _averaged(graph: _Graph, estimator, values: str) -> str:
    """With test-time copies of the images: ``values`` (V * N, k) of the images then
    each copy, averaged to (N, k); else ``values`` itself."""
    views = _views(estimator)
    if views is None:
        return values
    shape = estimator.network_.shape_after()  # the network's output width, from its specs
    copies = 1 + len(augmentations.HALF_PIXEL_MOVES) if views == "shift" else 2
    pairs = graph.node("Reshape", [values, graph.constant("pairs", [copies, -1, *shape])])
    return graph.node("ReduceMean", [pairs, graph.constant("axes", [0])], "averaged",
                      keepdims=0)  # opset 18: the axes are an input


def _output_type(estimator):
    return FloatTensorType


def _classifier_parser(scope, model, inputs, custom_parsers=None):
    """skl2onnx's own classifier parser (labels, probabilities, ZipMap), once the
    model is known to be fitted: that parser asks for ``classes_`` first."""
    check_is_fitted(model)
    from skl2onnx._parse import _parse_sklearn_classifier

    return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)


def _classifier_shapes(operator) -> None:
    estimator = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    labels = estimator.classes_
    label_type = StringTensorType if labels.dtype.kind in "OUS" else Int64TensorType
    operator.outputs[0].type = label_type([n])
    operator.outputs[1].type = _output_type(estimator)([n, len(labels)])


def _classifier(scope, operator, container) -> None:
    graph, logits, estimator = _network_output(scope, operator, container)
    if _views(estimator) is not None:
        proba = _averaged(graph, estimator, graph.node("Softmax", [logits], axis=1))
        graph.node("Identity", [proba], outputs=operator.outputs[1].full_name)
        logits = proba  # the same argmax
    else:
        graph.node("Softmax", [logits], outputs=operator.outputs[1].full_name, axis=1)
    index = graph.node("ArgMax", [logits], "index", axis=1, keepdims=0)
    classes = estimator.classes_
    if classes.dtype.kind in "OUS":
        table = graph.constant("classes", np.array([str(c) for c in classes], dtype=object))
    else:  # ints, bools and whole floats (a classifier refuses fractional labels)
        table = graph.constant("classes", classes.astype(np.int64))
    label = graph.node("ArrayFeatureExtractor", [table, index], "labels", domain="ai.onnx.ml")
    graph.node("Reshape", [label, graph.constant("flat", [-1])],
               outputs=operator.outputs[0].full_name)


def _regressor_shapes(operator) -> None:
    estimator = operator.raw_operator
    check_is_fitted(estimator)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _output_type(estimator)([n, estimator.n_outputs_])


def _regressor(scope, operator, container) -> None:
    graph, outputs, estimator = _network_output(scope, operator, container)
    outputs = _averaged(graph, estimator, outputs)
    scaled = graph.node("Mul", [outputs, graph.weight("scale", estimator.target_scale_)])
    graph.node("Add", [scaled, graph.weight("mean", estimator.target_mean_)],
               outputs=operator.outputs[0].full_name)


def _image_step_shapes(output_shape):
    def calculate(operator) -> None:
        variable = operator.inputs[0]
        operator.outputs[0].type = _float_type(variable)(
            [variable.get_first_dimension(), *output_shape(operator.raw_operator)])
    return calculate


def _image_step(transform):
    """A converter for a transformer of images: the input read as images, then
    ``transform(graph, images, step) -> output``."""
    def convert(scope, operator, container) -> None:
        step, variable = operator.raw_operator, operator.inputs[0]
        graph = _Graph(scope, container, np.float32)
        images = _input_images(graph, step.input_shape_, variable)
        graph.node("Identity", [transform(graph, images, step)],
                   outputs=operator.outputs[0].full_name)
    return convert


def _standardize(graph: _Graph, images: str, scaler) -> str:
    centred = graph.node("Sub", [images, graph.weight("mean", scaler.mean_.reshape(1, -1, 1, 1))])
    return graph.node("Div", [centred, graph.weight("std", scaler.scale_.reshape(1, -1, 1, 1))])


def _resize(graph: _Graph, images: str, step) -> str:
    # bilinear with pixel centres aligned and edges held: ONNX's half_pixel linear
    # mode, which is what resize_images computes
    # (empty roi and scales tensors: skl2onnx's graph sorter does not take empty names)
    empty = graph.weight("empty", np.zeros(0))
    return graph.node("Resize", [images, empty, empty,
                                 graph.constant("size", _size_pair(step.size))],
                      "resized", mode="linear", coordinate_transformation_mode="half_pixel",
                      axes=[2, 3])


def _flatten(graph: _Graph, images: str, step) -> str:
    return graph.node("Flatten", [images], axis=1)


def to_onnx(model, X=None, *, options=None, target_opset: int = OPSET, **kwargs):
    """Convert a fitted estimator or pipeline with :func:`skl2onnx.to_onnx`, this
    package's converters registered first.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        A ``CNNClassifier`` or ``CNNRegressor``, alone or as the last step of a
        pipeline of transformers skl2onnx converts.
    X : array-like, default=None
        A sample of the input; one image is enough (its type and shape make the
        graph's input).
    options : dict, default=None
        skl2onnx's options, such as ``{"zipmap": False}`` for probabilities as one
        ``(n, n_classes)`` tensor.
    target_opset : int, default=OPSET
        The ONNX opset; the converters are tested with :data:`OPSET`.
    **kwargs
        Passed on to :func:`skl2onnx.to_onnx` (``name``, ``initial_types``...).

    Returns
    -------
    onnx.ModelProto

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.onnx import to_onnx
    >>> X = np.random.default_rng(0).random((20, 8, 8), dtype=np.float32)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, np.arange(20) % 2)
    >>> graph = to_onnx(clf, X[:1], options={"zipmap": False})
    >>> [output.name for output in graph.graph.output]
    ['label', 'probabilities']
    """
    register()
    return skl2onnx.to_onnx(model, X, options=options, target_opset=target_opset, **kwargs)


def register() -> None:
    """Register the converters with skl2onnx (done on import; again does no harm)."""
    options = {"zipmap": [True, False, "columns"], "nocl": [True, False]}
    update_registered_converter(CNNClassifier, "SklearnCNNClassifier", _classifier_shapes,
                                _classifier, options=options, parser=_classifier_parser)
    update_registered_converter(CNNRegressor, "SklearnCNNRegressor", _regressor_shapes,
                                _regressor)
    update_registered_converter(
        ChannelStandardizer, "SklearnCNNChannelStandardizer",
        _image_step_shapes(lambda s: list(s.input_shape_)), _image_step(_standardize))
    update_registered_converter(
        Resize, "SklearnCNNResize",
        _image_step_shapes(lambda s: [s.input_shape_[0], *_size_pair(s.size)]),
        _image_step(_resize))
    update_registered_converter(
        ImagesToFlat, "SklearnCNNImagesToFlat",
        _image_step_shapes(lambda s: [int(np.prod(s.input_shape_))]), _image_step(_flatten))
    update_registered_converter(
        FlatToImages, "SklearnCNNFlatToImages",
        _image_step_shapes(lambda s: list(s.input_shape_)),
        _image_step(lambda graph, images, step: images))

register()
