"""The NumPy backend's losses, each with its gradient with respect to the network's
outputs: the fused softmax cross-entropy of a classifier and a regressor's losses."""

from __future__ import annotations

import numpy as np

from .._base import REGRESSION_DERIVATIVES, REGRESSION_LOSSES


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
    # shares of the batch in float64 first: 1e300 (or 1e-300) overflows float32
    weights = (sample_weight / sample_weight.sum()).astype(logits.dtype)
    dlogits *= weights[:, None]
    return float(losses @ weights), dlogits


def regression_loss(outputs: np.ndarray, targets: np.ndarray,
                    sample_weight: np.ndarray | None = None, kind: str = "squared_error"
                    ) -> tuple[float, np.ndarray]:
    """Mean loss of a batch of regression outputs, and its gradient.

    A sample's loss is the mean over its outputs of the elementwise loss that
    ``backends.REGRESSION_LOSSES[kind]`` defines for both backends; the
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
    value, derivative = REGRESSION_LOSSES[kind], REGRESSION_DERIVATIVES[kind]
    n, k = outputs.shape
    residual = outputs - targets.astype(outputs.dtype, copy=False)      # (n, k)
    losses = value(residual).mean(axis=1)                               # (n,)
    doutputs = derivative(residual) / k
    if sample_weight is None:
        return float(losses.mean()), doutputs / n
    weights = (sample_weight / sample_weight.sum()).astype(outputs.dtype)
    return float(losses @ weights), doutputs * weights[:, None]
