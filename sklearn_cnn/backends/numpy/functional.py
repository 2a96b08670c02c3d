"""Vectorized kernels of the NumPy backend: patches of an image, their adjoint, the loss.

Convolution and pooling both look at the input through *windows*: for every output
position, the ``kh x kw`` patch it is computed from. Instead of visiting the output
positions one by one, the kernels here visit the ``kh * kw`` kernel offsets: at
offset ``(i, j)`` every output reads one strided slice of the input at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ...layers import conv_output_size
from .._base import HUBER_DELTA


def pad(x: np.ndarray, padding: tuple[int, int, int, int], value: float = 0.0
        ) -> np.ndarray:
    """Pad the spatial axes of ``x`` (N, C, H, W) by (top, bottom, left, right) with
    ``value`` (zeros; max pooling pads with ``-inf``)."""
    if not any(padding):
        return x
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def unpad(x: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    """Inverse of :func:`pad`: crop the padded border away."""
    top, bottom, left, right = padding
    return x[:, :, top:x.shape[2] - bottom, left:x.shape[3] - right]


def kernel_offsets(kernel: tuple[int, int], stride: tuple[int, int],
                   out_hw: tuple[int, int]) -> Iterator[tuple[int, int, int, tuple]]:
    """For each kernel offset, the strided slice of the input that all outputs read.

    Output pixel ``(p, q)`` reads input pixel ``(p*sh + i, q*sw + j)`` at kernel offset
    ``(i, j)``; over all outputs that is ``x[..., i:i + sh*Ho:sh, j:j + sw*Wo:sw]``,
    one strided view. Yields ``(k, i, j, (rows, cols))`` with ``k = i * kw + j``.
    This loop, over the ``kh * kw`` offsets, is the only one in the backend: none
    runs over samples, pixels or channels.
    """
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, i, j, (slice(i, i + sh * ho, sh), slice(j, j + sw * wo, sw))


def output_hw(x_shape: tuple[int, ...], kernel: tuple[int, int],
              stride: tuple[int, int]) -> tuple[int, int]:
    """``(Ho, Wo)`` of a window operation on (already padded) input of ``x_shape``."""
    return (conv_output_size(x_shape[-2], kernel[0], 0, stride[0]),
            conv_output_size(x_shape[-1], kernel[1], 0, stride[1]))


def im2col(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           out: np.ndarray | None = None) -> np.ndarray:
    """Unroll every patch of ``xp`` into a column: (N, C, H, W) -> (C*kh*kw, N*Ho*Wo).

    Row ``(c, i, j)`` holds input channel ``c`` at kernel offset ``(i, j)`` for every
    output position, so a convolution becomes one matrix product
    ``weight.reshape(O, C*kh*kw) @ cols``. ``out``, an array of the result's shape
    and dtype (the previous batch's columns, say), is filled instead of a new one.
    """
    n, c = xp.shape[:2]
    ho, wo = output_hw(xp.shape, kernel, stride)
    x_cn = xp.transpose(1, 0, 2, 3)                      # (C, N, H, W): rows copy fast
    shape = (c * kernel[0] * kernel[1], n * ho * wo)
    if out is None or out.shape != shape or out.dtype != xp.dtype:
        out = np.empty(shape, dtype=xp.dtype)
    cols = out.reshape(c, *kernel, n, ho, wo)
    for _, i, j, (rows, columns) in kernel_offsets(kernel, stride, (ho, wo)):
        cols[:, i, j] = x_cn[:, :, rows, columns]
    return out


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kernel: tuple[int, int],
           stride: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum column gradients back into an input gradient.

    Overlapping patches share input pixels, so their gradients add up. Each kernel
    offset touches a strided slice of the input exactly once, so a plain ``+=`` on
    that slice is safe (no ``np.add.at`` scatter needed).
    """
    n, c, h, w = x_shape
    ho, wo = output_hw(x_shape, kernel, stride)
    d = dcols.reshape(c, *kernel, n, ho, wo)
    dx_cn = np.zeros((c, n, h, w), dtype=dcols.dtype)   # (C, N, H, W), like the rows
    for _, i, j, (rows, columns) in kernel_offsets(kernel, stride, (ho, wo)):
        dx_cn[:, :, rows, columns] += d[:, i, j]
    return dx_cn.transpose(1, 0, 2, 3)


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray,
                          sample_weight: np.ndarray | None = None,
                          label_smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer labels, and its gradient.

    Fused for stability: ``log softmax(z) = z - logsumexp(z)``, computed after
    subtracting the row maximum, never takes the log of a rounded-to-zero
    probability. The target of sample ``i`` is its one-hot row, or with
    ``label_smoothing = e`` that row times ``1 - e`` plus ``e / n_classes`` everywhere
    (as ``torch.nn.functional.cross_entropy``). The gradient with respect to the
    logits is ``(softmax(z) - target) / n``, weighted per sample when
    ``sample_weight`` is given (then the mean is a weighted mean over the batch).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,), integers in ``[0, n_classes)``
    sample_weight : ndarray of shape (n_samples,), default=None
    label_smoothing : float in [0, 1), default=0.0

    Returns
    -------
    loss : float
    dlogits : ndarray of shape (n_samples, n_classes)
    """
    n, n_classes = logits.shape
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))   # (n, K)
    losses = -log_p[rows, y]
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1.0 - label_smoothing
    if label_smoothing:
        losses = (1.0 - label_smoothing) * losses - label_smoothing * log_p.mean(axis=1)
        dlogits -= label_smoothing / n_classes
    if sample_weight is None:
        return float(losses.mean()), dlogits / n
    weights = sample_weight.astype(logits.dtype) / sample_weight.sum()
    dlogits *= weights[:, None]
    return float(losses @ weights), dlogits


# Regression losses, elementwise on the residual r = output - target: the value and its
# derivative with respect to r. Squared error is MLPRegressor's 0.5 * r^2 (so the
# gradient is r itself); Huber is torch.nn.HuberLoss's, quadratic up to |r| = delta
# and linear beyond, so an outlier pulls with a bounded force; absolute error is |r|.
REGRESSION_LOSSES = {
    "squared_error": (lambda r: 0.5 * r * r, lambda r: r),
    "huber": (lambda r: np.where(np.abs(r) <= HUBER_DELTA, 0.5 * r * r,
                                 HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA)),
              lambda r: np.clip(r, -HUBER_DELTA, HUBER_DELTA)),
    "absolute_error": (np.abs, np.sign),
}


def regression_loss(outputs: np.ndarray, targets: np.ndarray,
                    sample_weight: np.ndarray | None = None, kind: str = "squared_error"
                    ) -> tuple[float, np.ndarray]:
    """Mean loss of a batch of regression outputs, and its gradient.

    A sample's loss is the mean of ``REGRESSION_LOSSES[kind]`` over its outputs; the
    batch's is the (weighted) mean over samples, as for
    :func:`softmax_cross_entropy`.

    Parameters
    ----------
    outputs, targets : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,), default=None
    kind : {"squared_error", "huber", "absolute_error"}

    Returns
    -------
    loss : float
    doutputs : ndarray of shape (n_samples, n_outputs)
    """
    value, derivative = REGRESSION_LOSSES[kind]
    n, k = outputs.shape
    residual = outputs - targets.astype(outputs.dtype, copy=False)      # (n, k)
    losses = value(residual).mean(axis=1)                               # (n,)
    doutputs = derivative(residual) / k
    if sample_weight is None:
        return float(losses.mean()), doutputs / n
    weights = sample_weight.astype(outputs.dtype) / sample_weight.sum()
    return float(losses @ weights), doutputs * weights[:, None]
