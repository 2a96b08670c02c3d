"""Turn a tuple of layer specs into a runnable NumPy network, and back into weights."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import numpy as np

from ... import layers as specs
from ..._weights import weight_shapes
from ...layers import LayerSpec, Shape
from .._base import prediction_plan, widest_activation
from . import layers as L
from .functional import FlatImages, conv_in_blocks, pools_in_windows, window_weights


def _own(spec, in_shape, weights, key):
    """This layer's arrays out of the network's canonical weights."""
    names = [*spec.param_shapes(in_shape), *spec.buffer_shapes(in_shape)]
    return {name: weights[f"{key}.{name}"] for name in names}


def _plain(layer_class):
    def build(spec, in_shape, weights, key, input_grad, rng):
        return layer_class(spec, in_shape, _own(spec, in_shape, weights, key),
                           input_grad=input_grad)
    return build


def _dropout(spec, in_shape, weights, key, input_grad, rng):
    return L.Dropout(spec, in_shape, input_grad=input_grad, rng=rng)


def _max_pool(spec, in_shape, weights, key, input_grad, rng):
    # 2x2 windows with stride 2 tile the map: a faster algorithm of their own
    halving = spec.kernel == spec.strides == (2, 2) and not spec.padding
    layer_class = L.HalvingMaxPool2d if halving else L.MaxPool2d
    return layer_class(spec, in_shape, input_grad=input_grad)


def _conv(spec, in_shape, weights, key, input_grad, rng):
    # stride-1 convolutions with many patch rows and few discarded grid columns run
    # faster on shifted slices (see FlatImages.pays_off)
    padding, kernel = spec.resolve_padding(in_shape), spec.kernel
    shifted = (FlatImages.fits(kernel, spec.strides, padding) and
               FlatImages.for_conv((1, *in_shape), kernel, padding).pays_off())
    layer_class = L.ShiftedConv2d if shifted else L.Conv2d
    return layer_class(spec, in_shape, _own(spec, in_shape, weights, key),
                       input_grad=input_grad)


def _residual(spec, in_shape, weights, key, input_grad, rng):
    body = _sequential(spec.body, in_shape, weights, input_grad, rng, f"{key}.body.")
    shortcut = _sequential(spec.shortcut, in_shape, weights, input_grad, rng,
                           f"{key}.shortcut.")
    return L.Residual(body, shortcut, input_grad=input_grad)


#: spec type -> builder; a test asserts it covers exactly ``layers.SPEC_TYPES``.
BUILDERS = {
    specs.Conv2d: _conv,
    specs.MaxPool2d: _max_pool,
    specs.AvgPool2d: _plain(L.AvgPool2d),
    specs.AdaptiveAvgPool2d: _plain(L.AdaptiveAvgPool2d),
    specs.GlobalAvgPool2d: _plain(L.GlobalAvgPool2d),
    specs.Flatten: _plain(L.Flatten),
    specs.Linear: _plain(L.Linear),
    specs.BatchNorm: _plain(L.BatchNorm),
    specs.Dropout: _dropout,
    specs.ReLU: _plain(L.Activation),
    specs.LeakyReLU: _plain(L.Activation),
    specs.Tanh: _plain(L.Activation),
    specs.Sigmoid: _plain(L.Activation),
    specs.Residual: _residual,
}


def _sequential(layer_specs, in_shape, weights, input_grad, rng, prefix) -> L.Sequential:
    layers, shape = [], tuple(in_shape)
    for i, spec in enumerate(layer_specs):
        key = f"{prefix}{i}"
        layer = BUILDERS[type(spec)](spec, shape, weights, key, input_grad, rng)
        layer.key = key
        layers.append(layer)
        # only the first layer may skip its input gradient
        input_grad = True
        shape = spec.output_shape(shape)
    return L.Sequential(layers, training_order(layers))


def training_order(layers: list[L.Layer]) -> list[L.Layer]:
    """The layers in the order to run them, each ReLU moved after the 2x2 max-pool
    that follows it.

    ``max(relu(a), relu(b)) = relu(max(a, b))``, and the gradients agree too: the
    pool sends a window's gradient to its first maximum, which is the same position
    either way when the maximum is positive, and ReLU's derivative zeroes it either
    way when it is not. Run after the pool, the ReLU touches a quarter of the
    values (the simple net on 28x28, a batch of 128: 3.0 ms of the ReLU's forward
    and backward become 0.8 ms, on 2 cores). Only ReLU: a leaky ReLU or tanh can
    round two different inputs to one output, and a tie then sends the gradient
    elsewhere. (Prediction moves every such activation: ``prediction_steps``.)
    """
    order = list(layers)
    for i in range(len(order) - 1):
        activation, pool = order[i:i + 2]
        if (isinstance(activation, L.Activation) and type(activation.spec) is specs.ReLU
                and isinstance(pool, L.HalvingMaxPool2d)):
            order[i:i + 2] = pool, activation
    return order


class Network:
    """A NumPy network built from specs, with canonical weights in and out.

    Parameters
    ----------
    layer_specs : tuple of LayerSpec
    input_shape : tuple (C, H, W)
    weights : dict of str to ndarray
        Canonical weights (see ``sklearn_cnn._weights``); copied, never aliased.
    rng : numpy.random.Generator, default=None
        Source of dropout masks (see also :meth:`seed_dropout`).
    dtype : numpy dtype, default=float32
        float64 is used by the gradient-check tests.
    input_grad : bool, default=False
        Whether ``backward`` computes the gradient with respect to the input images.
        Training never needs it, so the first layer skips that work.
    """

    def __init__(self, layer_specs: tuple[LayerSpec, ...], input_shape: Shape,
                 weights: dict[str, np.ndarray], rng: np.random.Generator | None = None,
                 dtype=np.float32, input_grad: bool = False):
        self.specs, self.input_shape, self.dtype = tuple(layer_specs), tuple(input_shape), dtype
        expected = weight_shapes(self.specs, self.input_shape)
        _check_weights(weights, expected)
        own = {k: np.array(weights[k], dtype=dtype) for k in expected}
        rng = np.random.default_rng(0) if rng is None else rng
        self.root = _sequential(self.specs, self.input_shape, own, input_grad, rng, "")
        # training state, kept between epochs (set by the backend's configure): the
        # optimizer, its settings, and the (layer, name) pairs it trains and decays
        self.optimizer = None
        self.config = None
        self.trained: list[tuple[L.Layer, str]] = []
        self.decayed: list[tuple[L.Layer, str]] = []

    @functools.cached_property
    def widest_activation(self) -> int:
        """Values of one image's largest activation (sizes the prediction passes)."""
        return widest_activation(self.specs, self.input_shape)

    @functools.cached_property
    def prediction_width(self) -> int:
        """Values of one image's largest array in a prediction pass (sizes the passes):
        the input or a prediction step's output. A convolution made one step with its
        max-pool never holds its full-size output, so this can be well under
        :attr:`widest_activation` (the default network's 12,544 -> 6,272, LeNet's
        3,456 -> 864). Found by running one zero image through the steps, once:
        the shapes do not depend on the weights."""
        x = np.zeros((1, *self.input_shape), dtype=self.dtype)
        widest = x.size
        for step in prediction_steps(self.root.layers):
            x = step(x)
            widest = max(widest, x.size)
        return widest

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return self.root.forward(x, training)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Fill every layer's ``grads``; return the input gradient if ``input_grad``."""
        return self.root.backward(dout)

    def prediction(self) -> Callable[[np.ndarray], np.ndarray]:
        """``forward(x, training=False)`` as a function, rewritten where that saves
        work without changing the result beyond rounding (:func:`prediction_steps`).
        Made from the current weights: ask again after they change."""
        return _runner(prediction_steps(self.root.layers))

    def forward_to(self, x: np.ndarray, key: str) -> np.ndarray:
        """Run x through the network up to and including the layer ``key`` (``"3"``,
        or ``"2.body.1"`` inside a residual block), in evaluation mode."""
        node, parts = self.root, key.split(".")
        while parts:
            index, branch, parts = int(parts[0]), parts[1:2], parts[2:]
            for layer in node.layers[:index]:
                x = layer.forward(x, training=False)
            target = node.layers[index]
            if not branch:
                return target.forward(x, training=False)
            node = getattr(target, branch[0])  # into a residual block's body or shortcut
        return x

    def all_layers(self) -> list[L.Layer]:
        """Every leaf layer in order, residual blocks entered."""
        found, stack = [], [self.root]
        while stack:
            layer = stack.pop()
            if isinstance(layer, L.Sequential):
                stack.extend(reversed(layer.layers))
            elif isinstance(layer, L.Residual):
                stack.extend([layer.shortcut, layer.body])
            else:
                found.append(layer)
        return found

    def layers(self) -> list[L.Layer]:
        """The layers that own arrays (parameters or buffers)."""
        return [layer for layer in self.all_layers() if layer.params or layer.buffers]

    def seed_dropout(self, seed: int, stream: int = 0) -> None:
        """Draw the next dropout masks from generators seeded by ``seed`` (one per
        Dropout layer, so each layer's masks depend on the seed and its position);
        ``stream`` tells apart the replicas of a sharded step (:meth:`replica`)."""
        dropouts = [layer for layer in self.all_layers() if isinstance(layer, L.Dropout)]
        for position, layer in enumerate(dropouts):
            key = [int(seed), position] + ([stream] if stream else [])
            layer.rng = np.random.default_rng(key)

    def replica(self) -> Network:
        """A network that shares this one's parameters and buffers (the same
        arrays) but keeps gradients, caches and dropout generators of its own: one
        shard of a data-parallel training step runs on each (``shards.Shards``).
        It has no optimizer: the step adds the replicas' gradients up into this
        network's, and this network's optimizer updates the shared arrays."""
        shared = {id(array): array for layer in self.layers()
                  for array in (*layer.params.values(), *layer.buffers.values())}
        twin = copy.copy(self)
        twin.root = copy.deepcopy(self.root, shared)  # arrays in ``shared`` not copied
        twin.optimizer, twin.trained, twin.decayed = None, [], []
        return twin

    def clear_cache(self) -> None:
        """Drop what forward kept for backward, in every thread (a fitted model need
        not carry it)."""
        for layer in self.all_layers():
            layer.clear_cache()

    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights (copies, in the network's dtype), parameters and buffers."""
        return {f"{layer.key}.{name}": array.copy()
                for layer in self.layers()
                for name, array in {**layer.params, **layer.buffers}.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy canonical weights in place (the optimizer keeps its references)."""
        _check_weights(weights, weight_shapes(self.specs, self.input_shape))
        for layer in self.layers():
            for name, array in {**layer.params, **layer.buffers}.items():
                array[...] = weights[f"{layer.key}.{name}"]


def _check_weights(weights: dict[str, np.ndarray], expected: dict[str, Shape]) -> None:
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [f"{k}: expected {expected[k]}, got {tuple(np.shape(weights[k]))}"
             for k in expected if k in weights and tuple(np.shape(weights[k])) != expected[k]]
    if missing or unexpected or wrong:
        raise ValueError(
            "Weights do not match the architecture: "
            f"missing {missing}, unexpected {unexpected}, wrong shapes {wrong}"
        )


#: element-wise functions that never decrease, so a max-pool takes the same maximum
#: before or after them
_MONOTONE = (specs.ReLU, specs.Tanh, specs.Sigmoid)


def _kind(layer: L.Layer) -> str:
    """What ``prediction_plan`` needs to know of a layer."""
    spec = layer.spec
    if isinstance(layer, L.Conv2d):
        return "conv"
    if isinstance(layer, L.BatchNorm):
        return "norm"
    if isinstance(layer, L.HalvingMaxPool2d):
        return "pool"
    monotone = isinstance(spec, _MONOTONE) or (
        isinstance(spec, specs.LeakyReLU) and spec.negative_slope >= 0)
    return "monotone" if isinstance(layer, L.Activation) and monotone else "other"


def prediction_steps(layers: list[L.Layer]) -> list[Callable[[np.ndarray], np.ndarray]]:
    """A sequence of layers as prediction steps, functions of the batch, rewritten as
    ``backends.prediction_plan`` says: each BatchNorm after a convolution folded into
    it, each ReLU-like activation moved after its 2x2 max-pool; then a convolution
    and the 2x2 max-pool right after it made one step where that pays
    (:func:`_pooled`); residual blocks are rewritten inside."""
    units: list[L.Layer] = []
    for action, *group in prediction_plan(layers, _kind):
        units.extend([_folded(*group)] if action == "fold" else group)
    steps, i = [], 0
    while i < len(units):
        layer, after = units[i], units[i + 1] if i + 1 < len(units) else None
        i += 1
        if isinstance(layer, L.Residual):
            body, shortcut = (_runner(prediction_steps(branch.layers))
                              for branch in (layer.body, layer.shortcut))
            steps.append(lambda x, body=body, shortcut=shortcut: body(x) + shortcut(x))
        elif isinstance(after, L.HalvingMaxPool2d) and _pools_in_windows(layer):
            steps.append(_pooled(layer))
            i += 1
        else:
            steps.append(_evaluated(layer))
    return steps


def _pools_in_windows(layer: L.Layer) -> bool:
    if not isinstance(layer, L.Conv2d):
        return False
    outputs, channels = layer.params["weight"].shape[:2]
    return pools_in_windows(channels, outputs, layer.kernel, layer.stride)


def _pooled(conv: L.Conv2d) -> Callable[[np.ndarray], np.ndarray]:
    """``conv`` and the 2x2 max-pool after it as one step: a convolution of the
    pooling windows, four outputs a window, of which each block keeps the largest
    (``functional.window_weights``; the weights are made here, once a prediction).
    On one Xeon core, 64 images: the default network's first convolution and pool
    1.0 -> 0.52 ms, the simple net's second 3.1 -> 2.7 ms; 256 images, LeNet's
    first 1.6 -> 1.3-1.4 ms, its second 1.8 -> 1.4 ms."""
    weight, bias, kernel, stride = window_weights(conv.params["weight"],
                                                  conv.params.get("bias"), conv.stride)
    padding = conv.padding

    def predict(x: np.ndarray) -> np.ndarray:
        out = conv_in_blocks(x, weight, bias, kernel, stride, padding, window_max=True)
        return out.transpose(3, 0, 1, 2)                     # (N, O, Ho/2, Wo/2)
    return predict


def _evaluated(layer: L.Layer) -> Callable[[np.ndarray], np.ndarray]:
    return layer.predict


def _runner(steps: list[Callable[[np.ndarray], np.ndarray]]) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        for step in steps:
            x = step(x)
        return x
    return run


def _folded(conv: L.Conv2d, norm: L.BatchNorm) -> L.Conv2d:
    """A copy of ``conv`` (same class, no caches) whose kernel and bias include
    ``norm``'s prediction-time affine map."""
    scale = norm.params["weight"] / np.sqrt(norm.buffers["running_var"] + norm.eps)  # (O,)
    shift = norm.params["bias"] - norm.buffers["running_mean"] * scale
    folded = copy.copy(conv)  # Layer.__getstate__: the copy starts with no caches
    folded.params = {"weight": conv.params["weight"] * scale[:, None, None, None],
                     "bias": shift + conv.params["bias"] * scale if "bias" in conv.params
                     else shift}
    return folded
