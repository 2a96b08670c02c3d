"""NumPy layers: each one's forward pass and its gradient, side by side.

Every layer follows one small contract:

- ``params`` and ``grads`` are dicts with the same keys (canonical names such as
  ``"weight"``); ``grads`` is filled by ``backward``.
- ``forward(x, training)`` returns the output and caches what ``backward`` needs.
- ``backward(dout)`` returns ``dx``, the gradient with respect to the input, or
  ``None`` when the layer was built with ``input_grad=False`` (the first layer: the
  gradient with respect to the images is never needed for training).
- ``predict(x)`` is ``forward(x, training=False)`` when no backward pass follows: it
  keeps nothing (a convolution then unrolls its patches block by block).

Shapes in comments: N samples, C input channels, O output channels, H x W input,
Ho x Wo output, kh x kw kernel.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from ... import layers as specs
from ...layers import LayerSpec, Shape
from .._base import adaptive_pool_matrix
from .functional import (
    FlatImages,
    col2im,
    conv_in_blocks,
    im2col,
    kernel_offsets,
    output_hw,
    pad,
    row_dots,
    shifted_conv,
    shifted_conv_backward,
    unpad,
)


class Layer:
    """Base layer: no parameters, identity shapes."""


    def __init__(self, spec: LayerSpec | None = None, in_shape: Shape = (),
                 params: dict[str, np.ndarray] | None = None, input_grad: bool = True):
        self.spec = spec
        self.input_grad = input_grad
        self.params: dict[str, np.ndarray] = dict(params or {})
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.buffers: dict[str, np.ndarray] = {}
        self._caches: dict[int, object] = {}

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The output in evaluation mode, when no backward pass will follow: nothing
        is kept for one (a layer may also skip the work of keeping it)."""
        out = self.forward(x, training=False)
        self._caches.pop(threading.get_ident(), None)
        return out

    # Prediction runs its passes on several threads through the same layers, so
    # each thread keeps a cache of its own: what its last forward kept for backward.
    @property
    def cache(self):
        """What this thread's last ``forward`` kept for ``backward`` (None before)."""
        return self._caches.get(threading.get_ident())

    @cache.setter
    def cache(self, value) -> None:
        self._caches[threading.get_ident()] = value

    def clear_cache(self) -> None:
        """Drop every thread's cache."""
        self._caches.clear()

    def scratch(self) -> np.ndarray | None:
        """The big array of this thread's previous cache (``cache[0]``), to be filled
        again instead of faulting in fresh megabytes each batch (None before)."""
        cache = self.cache
        return None if cache is None else cache[0]

    # a cache belongs to a thread of this process, a shard to one training step:
    # pickles and copies carry neither
    def __getstate__(self) -> dict:
        return {name: value for name, value in vars(self).items()
                if name not in ("_caches", "shard")}

    def __setstate__(self, state: dict) -> None:
        # (layers pickled before the caches were per thread carry one ``cache``)
        self.__dict__.update({k: v for k, v in state.items() if k != "cache"}, _caches={})


class Conv2d(Layer):
    """Convolution as one matrix product over unrolled patches (im2col).

    Any kernel, stride and padding. (Stride-1 convolutions whose patches are many
    have a faster class of their own, ``ShiftedConv2d``, chosen by the network's
    builder table.)
    """

    def __init__(self, spec: specs.Conv2d, in_shape: Shape, params, input_grad=True):
        super().__init__(spec, in_shape, params, input_grad)
        self.padding = spec.resolve_padding(in_shape)
        self.kernel, self.stride = spec.kernel, spec.strides

    def forward(self, x, training):
        top, bottom, left, right = self.padding
        n, c, h, w = x.shape
        xp_shape = (n, c, h + top + bottom, w + left + right)      # (N, C, Hp, Wp)
        ho, wo = output_hw(xp_shape, self.kernel, self.stride)
        # padded on the way; the previous batch's columns (no longer needed) are
        # overwritten
        cols = im2col(x, self.kernel, self.stride, out=self.scratch(),
                      padding=self.padding)                       # (C*kh*kw, Ho*Wo*N)
        weight = self.params["weight"].reshape(len(self.params["weight"]), -1)
        out = weight @ cols                                        # (O, Ho*Wo*N)
        if "bias" in self.params:
            out += self.params["bias"][:, None]
        self.cache = (cols, xp_shape)
        # a view in NCHW order; memory stays (O, Ho, Wo, N), which is what the next
        # convolution's im2col and this layer's backward read fastest
        return out.reshape(-1, ho, wo, n).transpose(3, 0, 1, 2)    # (N, O, Ho, Wo)

    def predict(self, x):
        # one cache-sized block of patches at a time, none kept for a backward pass
        weight = self.params["weight"].reshape(len(self.params["weight"]), -1)
        out = conv_in_blocks(x, weight, self.params.get("bias"), self.kernel, self.stride,
                             self.padding)                          # (O, Ho, Wo, N)
        return out.transpose(3, 0, 1, 2)                            # (N, O, Ho, Wo)

    def backward(self, dout):
        cols, xp_shape = self.cache
        n, o, ho, wo = dout.shape
        dout2 = dout.transpose(1, 2, 3, 0).reshape(o, ho * wo * n)  # (O, Ho*Wo*N)
        weight = self.params["weight"].reshape(o, -1)               # (O, C*kh*kw)
        # (cols @ dout2.T).T rather than dout2 @ cols.T: the same sums, but BLAS
        # shares the long Ho*Wo*N axis out better this way round (twice as fast
        # measured for 8 -> 16 channels at 28x28 on an AVX-512 Xeon)
        self.grads["weight"][...] = (cols @ dout2.T).T.reshape(self.params["weight"].shape)
        if "bias" in self.params:
            self.grads["bias"][...] = dout2.sum(axis=1)
        if not self.input_grad:
            return None
        # the column gradients go over the columns, which nothing needs any more
        # (fresh megabytes were faulted in at every step: ResNet20's stride-2
        # convolution, 700 page faults a step)
        dcols = np.matmul(weight.T, dout2, out=cols)               # (C*kh*kw, Ho*Wo*N)
        self.cache = (cols, None)  # spent: kept as the next forward's scratch only
        dxp = col2im(dcols, xp_shape, self.kernel, self.stride)
        return unpad(dxp, self.padding)


class ShiftedConv2d(Conv2d):
    """Stride-1 convolution on shifted slices of a flat zero-padded buffer.

    The same products as ``Conv2d``, but the patches are copied from contiguous
    slices (:class:`~.functional.FlatImages`) and unrolled one cache-sized block of
    columns at a time (:func:`~.functional.shifted_conv`), where im2col unrolls the
    whole batch into memory at once (in training, the blocks are shared out to
    threads: :func:`~.threads.map_blocks`). The builder table picks it where that was
    measured to pay off (:meth:`~.functional.FlatImages.pays_off`): stride-1
    convolutions of two input channels or more whose output is about as wide as
    their input (ResNet's, VGG's, the simple net's second). Its output is laid out like
    im2col's, (O, Ho, Wo, N), so the two kinds mix without transposes.
    """

    def __init__(self, spec: specs.Conv2d, in_shape: Shape, params, input_grad=True):
        super().__init__(spec, in_shape, params, input_grad)
        if not FlatImages.fits(self.kernel, self.stride, self.padding):
            raise ValueError(f"{spec} is not a stride-1 convolution that fits its map")

    def _weight_rows(self) -> np.ndarray:
        # (O, C, kh, kw) -> (O, kh*kw*C): the order of the shifted patches' rows
        weight = self.params["weight"]
        return weight.transpose(0, 2, 3, 1).reshape(len(weight), -1)

    def forward(self, x, training):
        flat = FlatImages.for_conv(x.shape, self.kernel, self.padding)
        # the previous batch's buffer is refilled (its zero gaps stay)
        buffer = flat.to_buffer(x, out=self.scratch())                 # (C, length)
        out = shifted_conv(buffer, self._weight_rows(), flat)          # (O, Ho, Wo, N)
        if "bias" in self.params:
            out += self.params["bias"][:, None, None, None]
        # and the previous backward's zero grid, to be filled again
        self.cache = (buffer, flat, None if self.cache is None else self.cache[2])
        return out.transpose(3, 0, 1, 2)                               # (N, O, Ho, Wo)

    def backward(self, dout):
        buffer, flat, padded = self.cache
        dout_c = dout.transpose(1, 2, 3, 0)                            # (O, Ho, Wo, N)
        if "bias" in self.params:
            self.grads["bias"][...] = dout_c.sum(axis=(1, 2, 3))
        if self.input_grad:  # the zero grid the input gradient needs, kept for next time
            padded = flat.gradient_grid(len(dout_c), dout.dtype, out=padded)
            self.cache = (buffer, flat, padded)
        drows, dx = shifted_conv_backward(buffer, dout_c, self._weight_rows(), flat,
                                          self.input_grad, padded)       # dx (C, H, W, N)
        o, (kh, kw) = len(dout_c), self.kernel
        self.grads["weight"][...] = drows.reshape(o, kh, kw, -1).transpose(0, 3, 1, 2)
        return None if dx is None else dx.transpose(3, 0, 1, 2)


class MaxPool2d(Layer):
    """Keep each window's maximum; its gradient flows back to that one position.

    Any window, stride and padding. With ties the first maximum in row-major order
    wins, as in PyTorch, so exactly one position of a window receives its gradient.
    (2x2 windows with stride 2 have a faster class of their own, ``HalvingMaxPool2d``,
    chosen by the network's builder table.)
    """

    def __init__(self, spec: specs.MaxPool2d, in_shape: Shape, params=None, input_grad=True):
        super().__init__(spec, in_shape, params, input_grad)
        self.kernel, self.stride = spec.kernel, spec.strides
        self.padding = (spec.padding,) * 4

    def forward(self, x, training):
        x = pad(x, self.padding, value=-np.inf)  # a -inf border never wins the max
        out_hw = output_hw(x.shape, self.kernel, self.stride)
        for k, _, _, (rows, cols) in kernel_offsets(self.kernel, self.stride, out_hw):
            candidate = x[:, :, rows, cols]                        # (N, C, Ho, Wo)
            if k == 0:
                # order="K" keeps x's memory layout, channel-major after a
                # convolution, which the next convolution copies from fastest
                out = candidate.copy(order="K")
                argmax = np.zeros_like(out, dtype=np.uint8)
                better = np.empty_like(out, dtype=bool)
                continue
            # strictly greater: with ties (zeros after a ReLU) the first maximum wins
            np.greater(candidate, out, out=better)
            np.maximum(out, candidate, out=out)
            np.copyto(argmax, k, where=better)
        self.cache = (argmax, x)
        return out

    def backward(self, dout):
        argmax, x = self.cache
        dx = np.zeros_like(x)  # same memory layout as x, which the layer below expects
        for k, _, _, (rows, cols) in kernel_offsets(self.kernel, self.stride, dout.shape[2:]):
            dx[:, :, rows, cols] += np.where(argmax == k, dout, 0)
        return unpad(dx, self.padding)


class HalvingMaxPool2d(Layer):
    """2x2 max pooling with stride 2, no padding: the common case, by halving.

    The maximum of a window is the larger of its two column maxima, so two halving
    steps (across columns, then across rows) find it, each remembering which side
    won. Strict ">" lets the left, then the top, win ties: the first maximum in
    row-major order, as in ``MaxPool2d`` and PyTorch.
    """

    def forward(self, x, training):
        h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2           # floor mode: odd edge out
        left, right = x[:, :, :h, 0:w:2], x[:, :, :h, 1:w:2]        # (N, C, H, Wo)
        columns = np.maximum(left, right)                            # (N, C, H, Wo)
        top, bottom = columns[:, :, 0::2], columns[:, :, 1::2]       # (N, C, Ho, Wo)
        # which side won each step, for the backward pass (prediction skips it: a
        # backward pass after all finds it out then)
        self.cache = (right > left, bottom > top, x) if training else (None, None, x)
        return np.maximum(top, bottom)

    def backward(self, dout):
        # the winner of each step gets the gradient, the loser 0: the winner's share is
        # dout * wins (1 or 0), the loser's dout minus that (exactly 0 or dout)
        right_wins, bottom_wins, x = self.cache
        if right_wins is None:
            self.forward(x, training=True)
            right_wins, bottom_wins, x = self.cache
        dcolumns = np.empty_like(right_wins, dtype=dout.dtype)      # (N, C, H, Wo)
        top, bottom = dcolumns[:, :, 0::2], dcolumns[:, :, 1::2]
        np.multiply(dout, bottom_wins, out=bottom)
        np.subtract(dout, bottom, out=top)
        h, w = right_wins.shape[2], 2 * right_wins.shape[3]
        # x's memory layout, which the layer below reads fastest; zeros only where an
        # odd last row or column belongs to no window
        dx = np.empty_like(x) if (h, w) == x.shape[2:] else np.zeros_like(x)
        left, right = dx[:, :, :h, 0:w:2], dx[:, :, :h, 1:w:2]
        np.multiply(dcolumns, right_wins, out=right)
        np.subtract(dcolumns, right, out=left)
        return dx


class AvgPool2d(Layer):
    """Mean of each window; its gradient is shared equally by the window."""

    def __init__(self, spec: specs.AvgPool2d, in_shape: Shape, params=None, input_grad=True):
        super().__init__(spec, in_shape, params, input_grad)
        self.kernel, self.stride = spec.kernel, spec.strides
        self.size = self.kernel[0] * self.kernel[1]
        self.padding = (spec.padding,) * 4

    def forward(self, x, training):
        x = pad(x, self.padding)  # zeros that count in the mean, as in PyTorch
        out_hw = output_hw(x.shape, self.kernel, self.stride)
        out = np.zeros((*x.shape[:2], *out_hw), dtype=x.dtype)
        for _, _, _, (rows, cols) in kernel_offsets(self.kernel, self.stride, out_hw):
            out += x[:, :, rows, cols]
        self.cache = x.shape
        return out / self.size

    def backward(self, dout):
        dx = np.zeros(self.cache, dtype=dout.dtype)
        share = dout / self.size
        for _, _, _, (rows, cols) in kernel_offsets(self.kernel, self.stride, dout.shape[2:]):
            dx[:, :, rows, cols] += share
        return unpad(dx, self.padding)


class AdaptiveAvgPool2d(Layer):
    """Window means that give a fixed output size: ``out = P_h @ x @ P_w^T``.

    Every window is a rectangle, so its mean is a mean over rows followed by a mean
    over columns: two small averaging matrices (:func:`adaptive_pool_matrix`)
    multiplied in from either side. The gradient multiplies their transposes in:
    ``dx = P_h^T @ dout @ P_w``.
    """

    def forward(self, x, training):
        (ho, wo), (h, w) = self.spec.size, x.shape[2:]
        self.cache = (adaptive_pool_matrix(h, ho, x.dtype),        # (Ho, H)
                      adaptive_pool_matrix(w, wo, x.dtype))        # (Wo, W)
        rows, cols = self.cache
        return rows @ x @ cols.T                                   # (N, C, Ho, Wo)

    def backward(self, dout):
        rows, cols = self.cache
        return rows.T @ dout @ cols                                # (N, C, H, W)


class GlobalAvgPool2d(Layer):
    """(N, C, H, W) -> (N, C): the mean of every channel."""

    def forward(self, x, training):
        self.cache = (x.shape, channel_axes(x))
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        shape, axes = self.cache
        # dx in x's memory layout (batch innermost after a convolution): the layers
        # below read their input and its gradient together, and element-wise work on
        # two layouts ran 4 times slower (a ResNet20 ReLU's backward: 1.76 against
        # 0.41 ms)
        dx = np.empty([shape[axis] for axis in axes], dtype=dout.dtype)   # e.g. (C, H, W, N)
        dx = dx.transpose(np.argsort(axes))                               # (N, C, H, W)
        dx[...] = (dout / (shape[2] * shape[3]))[:, :, None, None]
        return dx


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), C order (the layout PyTorch flattens to)."""

    def forward(self, x, training):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.cache)


class Linear(Layer):
    """``y = x W^T + b``; ``dW = dout^T x``, ``db = sum(dout)``, ``dx = dout W``."""

    def forward(self, x, training):
        self.cache = x                                             # (N, in)
        out = x @ self.params["weight"].T                          # (N, out)
        if "bias" in self.params:
            out += self.params["bias"]
        return out

    def backward(self, dout):
        x = self.cache
        self.grads["weight"][...] = dout.T @ x                     # (out, in)
        if "bias" in self.params:
            self.grads["bias"][...] = dout.sum(axis=0)
        if not self.input_grad:
            return None
        if x.flags.f_contiguous and not x.flags.c_contiguous:
            # x is a flattened batch-innermost map, memory (C*H*W, N): the gradient
            # goes back in that layout, which the layers below read fastest (a pooling
            # backward on mismatched layouts: 9.9 against 4.6 ms on the simple net)
            return (self.params["weight"].T @ dout.T).T                # (N, in)
        return dout @ self.params["weight"]                        # (N, in)


# Activations as tables, like scikit-learn's ACTIVATIONS / DERIVATIVES: the forward
# function and the local derivative dy/dx written from the input x and output y.
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # never overflows, unlike 1 / (1 + exp(-x))


ACTIVATIONS: dict[type, tuple[Callable, Callable]] = {
    specs.ReLU: (lambda s, x: np.maximum(x, 0),
                 lambda s, x, y: x > 0),
    specs.LeakyReLU: (lambda s, x: np.where(x > 0, x, s.negative_slope * x),
                      lambda s, x, y: np.where(x > 0, 1.0, s.negative_slope).astype(x.dtype)),
    specs.Tanh: (lambda s, x: np.tanh(x),
                 lambda s, x, y: 1.0 - y * y),
    specs.Sigmoid: (lambda s, x: _sigmoid(x),
                    lambda s, x, y: y * (1.0 - y)),
}


class Activation(Layer):
    """An element-wise nonlinearity from the ``ACTIVATIONS`` table."""

    def forward(self, x, training):
        # the table is looked up per call (not stored on self) so the layer pickles
        function = ACTIVATIONS[type(self.spec)][0]
        y = function(self.spec, x)
        self.cache = (x, y)  # the local derivative is made from them when it is needed
        return y

    def backward(self, dout):
        derivative = ACTIVATIONS[type(self.spec)][1]
        return dout * derivative(self.spec, *self.cache)


def channel_axes(x: np.ndarray) -> tuple[int, ...]:
    """Axes of ``x`` (N, C, H, W) or (N, C) with the channel first and the rest in
    the order its memory holds them: (1, 2, 3, 0) for the (C, H, W, N) layout both
    convolution kinds write, (1, 0, 2, 3) otherwise (plain NCHW, or a (N, C) batch)."""
    batch_minor = (1, *range(2, x.ndim), 0)
    if x.ndim > 2 and x.transpose(batch_minor).flags.c_contiguous:
        return batch_minor
    return (1, 0, *range(2, x.ndim))


def channel_rows(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """(N, C, H, W) or (N, C) -> (C, M): one row per channel, every value of that
    channel in it, in the order of ``axes`` (:func:`channel_axes`). A view when the
    memory is laid out that way already, a copy otherwise."""
    by_channel = x.transpose(axes)
    return by_channel.reshape(len(by_channel), -1)


def from_channel_rows(rows: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...]
                      ) -> np.ndarray:
    """Inverse of :func:`channel_rows`: (C, M) -> a view of ``shape`` (N, C, ...)."""
    by_channel = rows.reshape([shape[a] for a in axes])
    return by_channel.transpose(np.argsort(axes))


class BatchNorm(Layer):
    """Normalize per channel (maps) or feature (vectors), then scale and shift.

    Computed on :func:`channel_rows`, (C, M), so every statistic is a reduction along
    contiguous rows and the per-channel constants broadcast as columns. In a sharded
    training step (``shards.Shards``) ``shard`` adds each sum up over the shards,
    so the statistics are the whole batch's.
    """

    shard = None  # a shards.ShardMember while a sharded step runs

    def __init__(self, spec: specs.BatchNorm, in_shape: Shape, params, input_grad=True):
        params = dict(params)
        buffers = {k: params.pop(k) for k in ("running_mean", "running_var")}
        super().__init__(spec, in_shape, params, input_grad)
        self.buffers = buffers
        self.eps, self.momentum = spec.eps, spec.momentum

    def forward(self, x, training):
        axes = channel_axes(x)                 # the order of x's memory, channel first
        rows = channel_rows(x, axes)                               # (C, M)
        if not training:  # running statistics: one affine map per channel
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            scale = self.params["weight"] / np.sqrt(var + self.eps)  # gamma / std, (C,)
            self.cache = (rows, None, training, x.shape, axes, None)  # x_hat if needed
            out = rows * scale[:, None]
            out += (self.params["bias"] - mean * scale)[:, None]
            return from_channel_rows(out, x.shape, axes)
        m = rows.shape[1]                                  # values per channel in the batch
        if self.shard is not None:                         # ... of which this shard has len(x)
            m = m // len(x) * self.shard.batch
        mean = self._batch_sum(rows.sum(axis=1)) / m               # (C,)
        centered = rows - mean[:, None]
        var = self._batch_sum(row_dots(centered, centered)) / m    # (C,)
        if self.shard is None or self.shard.index == 0:  # the buffers are shared
            self._update_running(mean, var * m / max(m - 1, 1))
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        # x_hat = centered * inv_std is never stored: one pass over the maps fewer
        self.cache = (centered, inv_std, training, x.shape, axes, m)
        out = centered * (self.params["weight"] * inv_std)[:, None]  # gamma * x_hat
        out += self.params["bias"][:, None]                        # ... + beta
        return from_channel_rows(out, x.shape, axes)

    def _batch_sum(self, values: np.ndarray) -> np.ndarray:
        """``values``, sums over this layer's part of the batch, summed over the
        whole batch."""
        return values if self.shard is None else self.shard.sum(values)

    def _update_running(self, mean, unbiased_var):
        for name, batch in (("running_mean", mean), ("running_var", unbiased_var)):
            self.buffers[name] *= 1.0 - self.momentum
            self.buffers[name] += self.momentum * batch

    def backward(self, dout):
        centered, inv_std, training, shape, axes, m = self.cache
        drows = channel_rows(dout, axes)            # (C, M), ordered like the cached rows
        if not training:  # running statistics are constants; the input rows cached
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            centered, inv_std = centered - mean[:, None], 1.0 / np.sqrt(var + self.eps)
        # sums over x_hat = centered * inv_std: inv_std (per row) after the sum
        self.grads["weight"][...] = row_dots(drows, centered) * inv_std
        self.grads["bias"][...] = drows.sum(axis=1)
        scale = self.params["weight"] * inv_std                    # gamma / std, (C,)
        if not training:
            return from_channel_rows(drows * scale[:, None], shape, axes)
        # batch statistics depend on x too: subtract their share of the gradient,
        # dx = gamma / std * (dout - mean(dout) - x_hat * mean(dout * x_hat)), means
        # over the whole batch (this layer's gradients are its shard's share)
        dweight, dbias = self._batch_sum(np.stack([self.grads["weight"], self.grads["bias"]]))
        # written over the centred rows, which nothing needs after this: no temporary
        # of the maps' size (a third of this pass's time on 16 maps of 28x28)
        dx, self.cache = centered, None                            # (C, M)
        dx *= (-inv_std * dweight / m)[:, None]                    # -x_hat mean(dout x_hat)
        dx += drows
        dx -= (dbias / m)[:, None]                                 # - mean(dout)
        dx *= scale[:, None]                                       # times gamma / std
        return from_channel_rows(dx, shape, axes)


class Dropout(Layer):
    """Inverted dropout: scaled at training time so prediction is a plain identity."""

    def __init__(self, spec: specs.Dropout, in_shape: Shape, params=None, input_grad=True,
                 rng: np.random.Generator | None = None):
        super().__init__(spec, in_shape, params, input_grad)
        self.p = spec.p
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def forward(self, x, training):
        if not training or self.p == 0.0:
            self.cache = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        self.cache = keep.astype(x.dtype) / (1.0 - self.p)
        # out in x's memory layout (a flattened map is batch innermost), not the mask's
        return np.multiply(x, self.cache, out=np.empty_like(x))

    def backward(self, dout):
        if self.cache is None:
            return dout
        return np.multiply(dout, self.cache, out=np.empty_like(dout))


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``order``, when given, is the order to run them in: the same layers, with a
    ReLU and the 2x2 max-pool after it swapped (see the network's builder), which
    gives the same outputs and gradients on a quarter of the values.
    """

    def __init__(self, layers: list[Layer], order: list[Layer] | None = None):
        super().__init__()
        self.layers = layers
        self.order = list(layers) if order is None else order

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("order", list(self.layers))  # pickled before it was kept

    def forward(self, x, training):
        for layer in self.order:
            x = layer.forward(x, training)
        return x

    def backward(self, dout):
        for layer in reversed(self.order):
            dout = layer.backward(dout)
        return dout


class Residual(Layer):
    """``body(x) + shortcut(x)``: both branches receive the same upstream gradient."""

    def __init__(self, body: Sequential, shortcut: Sequential, input_grad=True):
        super().__init__(input_grad=input_grad)
        self.body, self.shortcut = body, shortcut

    def forward(self, x, training):
        return self.body.forward(x, training) + self.shortcut.forward(x, training)

    def backward(self, dout):
        dx_body = self.body.backward(dout)
        dx_short = self.shortcut.backward(dout)
        return None if not self.input_grad else dx_body + dx_short
