"""Canonical weights: names, shapes and initialisation, shared by every backend.

A network's weights are a flat dict ``{"<index>.<name>": array}``, the same keys a
``torch.nn.Sequential`` built from the spec uses in its ``state_dict``; layers inside a
residual block are named ``"<index>.body.<j>.<name>"`` and
``"<index>.shortcut.<j>.<name>"``. Initial weights are drawn here, in NumPy, so that
both backends start from the same numbers for the same ``random_state``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .layers import ACTIVATION_SPECS, BatchNorm, LayerSpec, LeakyReLU, ReLU, Residual, Shape


def walk(specs: tuple[LayerSpec, ...], in_shape: Shape,
         prefix: str = "") -> Iterator[tuple[str, LayerSpec, Shape, LayerSpec | None]]:
    """Yield ``(key_prefix, spec, in_shape, next_activation)`` for every layer.

    Residual blocks yield themselves and then their inner layers. ``next_activation``
    is the first activation after the layer in its own sequence (None if there is
    none): it decides between He and Glorot initialisation.
    """
    shape = tuple(in_shape)
    for i, spec in enumerate(specs):
        following = [s for s in specs[i + 1:] if isinstance(s, ACTIVATION_SPECS)]
        yield f"{prefix}{i}", spec, shape, (following[0] if following else None)
        if isinstance(spec, Residual):
            yield from walk(spec.body, shape, f"{prefix}{i}.body.")
            yield from walk(spec.shortcut, shape, f"{prefix}{i}.shortcut.")
        shape = spec.output_shape(shape)


def weight_shapes(specs: tuple[LayerSpec, ...], in_shape: Shape) -> dict[str, Shape]:
    """Every canonical array (parameters and buffers) the network owns, by key."""
    shapes = {}
    for key, spec, shape, _ in walk(specs, in_shape):
        for name, s in {**spec.param_shapes(shape), **spec.buffer_shapes(shape)}.items():
            shapes[f"{key}.{name}"] = s
    return shapes


def decayed_keys(specs: tuple[LayerSpec, ...], in_shape: Shape) -> set[str]:
    """Keys of the weights the L2 penalty ``alpha`` applies to (``spec.decayed``:
    convolution kernels and dense matrices), the one list both backends use."""
    return {f"{key}.{name}" for key, spec, _, _ in walk(specs, in_shape)
            for name in spec.decayed}


def init_weights(specs: tuple[LayerSpec, ...], in_shape: Shape,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fresh float32 weights for ``specs`` on inputs of ``in_shape``.

    Kernels and dense matrices followed by a ReLU-like activation get He normal
    (std ``sqrt(2 / fan_in)``); the others get Glorot uniform (limit
    ``sqrt(6 / (fan_in + fan_out))``), which keeps tanh/sigmoid out of saturation.
    Biases start at 0; BatchNorm at scale 1, shift 0, running mean 0, variance 1.
    """
    weights = {}
    for key, spec, shape, activation in walk(specs, in_shape):
        for name, s in spec.param_shapes(shape).items():
            weights[f"{key}.{name}"] = _init_array(spec, name, s, activation, rng)
        for name, s in spec.buffer_shapes(shape).items():
            fill = 1.0 if name == "running_var" else 0.0
            weights[f"{key}.{name}"] = np.full(s, fill, dtype=np.float32)
    return weights


def _init_array(spec: LayerSpec, name: str, shape: Shape,
                activation: LayerSpec | None, rng: np.random.Generator) -> np.ndarray:
    if name == "bias":
        return np.zeros(shape, dtype=np.float32)
    if isinstance(spec, BatchNorm):
        return np.ones(shape, dtype=np.float32)
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_out, fan_in = shape[0] * receptive, shape[1] * receptive
    if isinstance(activation, (ReLU, LeakyReLU)):
        values = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    else:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, shape)
    return values.astype(np.float32)
