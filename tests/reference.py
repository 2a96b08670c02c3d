"""Loop-based reference implementations: slow, obvious, and the oracle for the fast ones."""

import numpy as np


def conv2d(x, weight, bias, stride, padding):
    """Cross-correlation exactly as the formula reads, one output value at a time."""
    top, bottom, left, right = padding
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    sh, sw = stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for b in range(n):
        for f in range(o):
            for i in range(ho):
                for j in range(wo):
                    patch = x[b, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[b, f, i, j] = np.sum(patch * weight[f]) + bias[f]
    return out


def pool2d(x, kernel, stride, reduce):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, ho, wo))
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    out[b, ch, i, j] = reduce(x[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw])
    return out
