"""Vectorized kernels of the NumPy backend: patches of an image and their adjoint.

Convolution and pooling both look at the input through *windows*: for every output
position, the ``kh x kw`` patch it is computed from. Instead of visiting the output
positions one by one, the kernels here visit the ``kh * kw`` kernel offsets: at
offset ``(i, j)`` every output reads one strided slice of the input at once
(:func:`im2col`), or, for stride 1 on a flat padded layout, one contiguous slice
(:class:`FlatImages`, :func:`shifted_conv`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ...layers import conv_output_size
from .threads import block_workers, map_blocks


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
    This loop, over the ``kh * kw`` offsets, and the shifted convolution's loop over
    cache-sized blocks of columns (:class:`FlatImages`) are the only ones in the
    backend: none runs over samples, pixels or channels.
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
           out: np.ndarray | None = None,
           padding: tuple[int, int, int, int] = (0, 0, 0, 0)) -> np.ndarray:
    """Unroll every patch of ``xp`` into a column: (N, C, H, W) -> (C*kh*kw, Ho*Wo*N).

    Row ``(c, i, j)`` holds input channel ``c`` at kernel offset ``(i, j)`` for every
    output position, so a convolution becomes one matrix product
    ``weight.reshape(O, C*kh*kw) @ cols``. ``out``, an array of the result's shape
    and dtype (the previous batch's columns, say), is filled instead of a new one.

    The columns are ordered (Ho, Wo, N), batch innermost: read from the images laid
    out (C, H, W, N), the slice at each kernel offset copies runs of ``Wo * N``
    contiguous values, where (C, N, H, W) would give runs of only ``Wo`` (8 on
    LeNet's 12x12 maps: im2col 1.98 -> 0.37 ms, col2im 4.25 -> 1.28 ms a batch of
    128, measured on 2 cores). The product then comes out laid out (O, Ho, Wo, N),
    the layout the next window operation reads fastest in turn.

    ``padding`` (top, bottom, left, right) pads ``xp`` with zeros on the way, in the
    (C, H, W, N) layout: padding the (N, C, H, W) view first (``np.pad``) copied
    the images across their memory order and back, which made a small "same"
    convolution's step about a third slower (``simple`` on 28x28: pad 0.46 s of a
    3.3 s epoch, measured on 2 cores).
    """
    n, c = xp.shape[:2]
    x_chwn = padded_chwn(xp, padding)                              # (C, Hp, Wp, N)
    ho, wo = output_hw((n, *x_chwn.shape[:3]), kernel, stride)
    shape = (c * kernel[0] * kernel[1], ho * wo * n)
    if out is None or out.shape != shape or out.dtype != xp.dtype:
        out = np.empty(shape, dtype=xp.dtype)
    cols = out.reshape(c, *kernel, ho, wo, n)
    for _, i, j, (rows, columns) in kernel_offsets(kernel, stride, (ho, wo)):
        cols[:, i, j] = x_chwn[:, rows, columns]
    return out


def padded_chwn(x: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    """Images (N, C, H, W) laid out (C, Hp, Wp, N), zero-padded by (top, bottom,
    left, right): a view when ``x`` already lies so in memory (an earlier
    convolution's output) and nothing is padded, a copy otherwise."""
    n, c, h, w = x.shape
    top, bottom, left, right = padding
    if not any(padding):
        return np.ascontiguousarray(x.transpose(1, 2, 3, 0))
    x_chwn = np.empty((c, h + top + bottom, w + left + right, n), dtype=x.dtype)
    x_chwn[:, top:top + h, left:left + w] = x.transpose(1, 2, 3, 0)
    # zeros around, written once (zeroing the whole buffer first wrote the inside twice)
    x_chwn[:, :top] = x_chwn[:, top + h:] = 0
    x_chwn[:, top:top + h, :left] = x_chwn[:, top:top + h, left + w:] = 0
    return x_chwn


#: values a prediction block holds, its patches and any product it keeps (see
#: :func:`conv_in_blocks`): 256 KB of float32, which stay in a core's L2 cache (2 MB
#: on the Xeon, 512 KB on the EPYC) between being copied and being multiplied. On
#: one core of an AVX-512 Xeon, 2**16 and 2**17 values tie; 2**18 made LeNet's first
#: convolution 1.5 times slower, 2**19 twice. A block holds at least one row of
#: outputs.
PREDICT_BLOCK_VALUES = 2**16


def conv_in_blocks(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int, int, int], window_max: bool = False
                   ) -> np.ndarray:
    """A convolution's forward pass for prediction, im2col one block of output rows
    at a time: (N, C, H, W) -> (O, Ho, Wo, N).

    The same sums as ``weight @ im2col(x) + bias`` (the same patch rows), but
    nothing is kept for a backward pass, so the whole batch's columns need never
    exist: each block of :data:`PREDICT_BLOCK_VALUES` patch values is copied from
    the windows view (one copy, no loop over kernel offsets) and multiplied while it
    is still in the cache, straight into its columns of the output. The bias rides
    in the product, as one more weight column against a row of ones, so a block
    costs two NumPy calls: prediction runs its passes on threads, and every call
    hands the GIL over. On one Xeon core, a pass of 128 images: LeNet's first
    convolution 1.45 -> 0.57 ms, its second 0.90 -> 0.71 ms; the default network's
    second (16 -> 32 channels on 14x14, 64 images) 1.99 -> 1.63 ms.

    ``weight`` is (O, C*kh*kw), its columns ordered like im2col's rows: (C, kh, kw).
    With ``window_max``, its rows are four groups of O, and each output is the
    largest of its four: a convolution and the 2x2 max-pool after it, made one by
    :func:`window_weights` (each block's four groups are reduced in the cache, two
    NumPy calls more).
    """
    (kh, kw), (sh, sw), n = kernel, stride, len(x)
    x_chwn = padded_chwn(x, padding)                                     # (C, Hp, Wp, N)
    c = len(x_chwn)
    ho, wo = output_hw((n, *x_chwn.shape[:3]), kernel, stride)
    # patch value (c, i, j) of output (p, q) of image n is x_chwn[c, p*sh + i, q*sw + j,
    # n]: the patches of a block of output rows, (C, kh, kw, rows, Wo, N), are a view
    # of x_chwn with these strides
    s_c, s_h, s_w, s_n = x_chwn.strides
    strides = (s_c, s_h, s_w, s_h * sh, s_w * sw, s_n)
    products, rows = weight.shape
    o = products // 4 if window_max else products
    if bias is not None:
        weight = np.concatenate([weight, bias[:, None]], axis=1)        # (O, rows + 1)
    per_row = wo * n                                  # columns of one row of outputs
    held = rows + (products if window_max else 0)  # values a column holds, about
    step = min(max(PREDICT_BLOCK_VALUES // (held * per_row), 1), ho)     # rows a block
    out = np.empty((o, ho * per_row), dtype=x.dtype)                     # (O, Ho*Wo*N)
    scratch = np.empty(weight.shape[1] * step * per_row, dtype=x.dtype)
    found = np.empty((products, step * per_row), dtype=x.dtype) if window_max else None
    for begin in range(0, ho, step):
        m = min(step, ho - begin)                     # output rows in this block
        if begin == 0 or m < step:                    # the first block, a short last one
            block = scratch[:weight.shape[1] * m * per_row].reshape(-1, m * per_row)
            block[rows:] = 1                          # the bias' row of ones
            patches = block[:rows].reshape(c, kh, kw, m, wo, n)
        patches[...] = np.ndarray((c, kh, kw, m, wo, n), x.dtype, x_chwn,
                                  begin * sh * s_h, strides)
        into = out[:, begin * per_row:(begin + m) * per_row]
        if not window_max:
            np.matmul(weight, block, out=into)
            continue
        both = found[:, :m * per_row]                                    # (4*O, m)
        np.matmul(weight, block, out=both)
        half = both[:2 * o]                           # the larger of rows 0 and 1 ...
        np.maximum(half, both[2 * o:], out=half)
        np.maximum(half[:o], half[o:], out=into)      # ... of columns 0 and 1
    return out.reshape(o, ho, wo, n)


def window_weights(weight: np.ndarray, bias: np.ndarray | None, stride: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int], tuple[int, int]]:
    """A convolution followed by a 2x2 max-pool with stride 2, as one convolution
    whose outputs come in fours: ``(weight, bias, kernel, stride)`` for
    :func:`conv_in_blocks` with ``window_max``.

    A pooling window's four outputs read one patch of ``(kh + sh) x (kw + sw)``
    pixels between them, and its windows step ``2 * sh`` rows and ``2 * sw``
    columns: so the four are a convolution with that kernel and stride, and four
    times the output channels, each group the original kernel placed at its
    corner of the window, zeros elsewhere (3x3: 16/9 of the products, in a
    better-shaped product). Returns ``weight`` as (4*O, C*kh'*kw'), rows ordered
    (window row, window column, O), and ``bias`` repeated four times.
    """
    o, c, kh, kw = weight.shape
    (sh, sw) = stride
    windows = np.zeros((2, 2, o, c, kh + sh, kw + sw), dtype=weight.dtype)
    # window (di, dj)'s kernel starts di*sh rows and dj*sw columns in: the four
    # corners are one view, each step along di also going sh rows down (along dj, sw
    # columns right), filled in one call (a single image's prediction feels each one)
    s = windows.strides
    corners = np.ndarray((2, 2, o, c, kh, kw), windows.dtype, windows, 0,
                         (s[0] + sh * s[4], s[1] + sw * s[5], *s[2:]))
    corners[...] = weight
    return (windows.reshape(4 * o, -1), None if bias is None else np.concatenate((bias,) * 4),
            (kh + sh, kw + sw), (2 * sh, 2 * sw))


def pools_in_windows(channels: int, outputs: int, kernel: tuple[int, int],
                     stride: tuple[int, int]) -> bool:
    """Whether a convolution and the 2x2 max-pool after it predict faster as one
    convolution of pooling windows (:func:`window_weights`): where the direct
    product has few weight rows (BLAS multiplies 16 or 32 slowly, and the windows
    give it four times as many), unless the windows would double the products or
    more (1x1 and 2x2 kernels, a stride of 2). Measured over 192 cases on one Xeon
    core, 3x3 to 7x7 kernels, 1 to 64 channels in and 16 to 128 out
    (``benchmarks/numpy_profile.py --windows``, which says where this rule picks
    the slower form: 22 cases there, at worst 1.14 times the faster)."""
    (kh, kw), (sh, sw) = kernel, stride
    if (kh + sh) * (kw + sw) >= 2 * kh * kw:
        return False
    if kh * kw >= 16:
        return outputs <= 64 or channels <= 8
    return channels <= 4 or outputs <= 16 or channels * outputs <= 256


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kernel: tuple[int, int],
           stride: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum column gradients back into an input gradient.

    Overlapping patches share input pixels, so their gradients add up. Each kernel
    offset touches a strided slice of the input exactly once, so a plain ``+=`` on
    that slice is safe (no ``np.add.at`` scatter needed). Returned as an (N, C, H, W)
    view of memory laid out (C, H, W, N), like the columns.
    """
    n, c, h, w = x_shape
    ho, wo = output_hw(x_shape, kernel, stride)
    d = dcols.reshape(c, *kernel, ho, wo, n)
    dx_chwn = np.zeros((c, h, w, n), dtype=dcols.dtype)  # (C, H, W, N), like the rows
    for _, i, j, (rows, columns) in kernel_offsets(kernel, stride, (ho, wo)):
        dx_chwn[:, rows, columns] += d[:, i, j]
    return dx_chwn.transpose(3, 0, 1, 2)


#: patch values of the shifted-slice convolution unrolled at once: a block of columns
#: (1 MB of float32, 1,820 columns of a 16-channel 3x3 convolution) that stays in a
#: core's cache while it is copied and multiplied, where a whole batch's patches (58
#: MB for 128 images of 28x28 and 16 channels) would go out to memory and back.
#: Training runs each shard's blocks on one core (``shards``); ResNet20 on 2 cores
#: of an AVX-512 Xeon (2 MB of L2 a core), interleaved: a 64-image step on one core
#: 287-291 ms with 2**18 values, 292-304 with 2**17, 302-310 with 2**19, 312-315
#: with 2**16 or 2**20; one-epoch fits on 2,560 images 6.65-6.87 s with 2**18
#: against 6.80-7.09 with 2**20. (Before the shards, with two threads sharing each
#: layer's blocks, 2**19 and 2**20 had tied as the fastest on an AVX2 EPYC.)
BLOCK_VALUES = 2**18


@dataclass(frozen=True)
class FlatImages:
    """Where a batch of zero-padded images lies in one flat row per channel.

    For a convolution with stride 1 a kernel offset ``(i, j)`` is a *shift*: output
    ``(p, q)`` reads input ``(p + i, q + j)``. Lay each channel of the batch out as
    one long row, image row after image row and, within a row, pixel after pixel
    with the batch innermost, as im2col's columns are: (rows, row, N). Put ``top``
    zero rows before the images, ``bottom`` after them and ``left`` zero columns
    before every image row; then a shift by ``(i, j)`` is a shift by
    ``(i * row + j) * N`` along the flat row, and the patches at kernel offset
    ``(i, j)`` for *all* outputs are one contiguous slice,
    ``buffer[:, offset:offset + size]``. The zero columns before the next row serve
    as this row's right padding, so that gap is ``max`` of the two sides, not their
    sum.

    Output ``(p, q)`` of image ``n`` lands at flat position ``(p*row + q)*N + n`` of
    a grid of the geometry ``(Ho, row, N)``; the positions with ``q >= Wo`` straddle
    a gap, and are not computed (:meth:`output_lines`): they are ``left / row`` of
    the grid, 1/8 on 7x7 maps padded by 1. Nor are the input gradient's at the
    buffer's zeros (:meth:`pixel_lines`): 23 of every 72 positions there. Computing
    both would cost ResNet20's training step 6 %.
    """

    n: int
    channels: int
    height: int
    width: int
    top: int          # zero rows before the images: the top padding
    bottom: int       # zero rows after them: the bottom padding
    left: int         # zero columns before each image row: max(pad left, pad right)
    out_hw: tuple[int, int]
    offsets: tuple[int, ...]  # flat shift of each kernel offset, row-major (i, j)
    kernel: tuple[int, int]   # (kh, kw): offsets is its grid of shifts

    @classmethod
    def for_conv(cls, x_shape: tuple[int, ...], kernel: tuple[int, int],
                 padding: tuple[int, int, int, int]) -> FlatImages:
        n, c, h, w = x_shape
        pad_top, pad_bottom, pad_left, pad_right = padding
        left = max(pad_left, pad_right)
        out_hw = (h + pad_top + pad_bottom - kernel[0] + 1,
                  w + pad_left + pad_right - kernel[1] + 1)
        row = w + left
        # window (0, 0) of output (0, 0) starts pad_left columns before the first
        # pixel of its row, which sits at column left
        start = left - pad_left
        offsets = tuple((start + i * row + j) * n
                        for i in range(kernel[0]) for j in range(kernel[1]))
        return cls(n, c, h, w, pad_top, pad_bottom, left, out_hw, offsets, tuple(kernel))

    @staticmethod
    def fits(kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int, int, int]) -> bool:
        """Whether a convolution can run on this layout: stride 1, and no side padded
        by a whole kernel or more (every output row then fits in the grid)."""
        top, bottom, left, right = padding
        return stride == (1, 1) and min(top, bottom) < kernel[0] and min(left, right) < kernel[1]

    def pays_off(self) -> bool:
        """Whether the blocks beat one im2col of the whole batch, measured on 2 cores
        of a Xeon with AVX-512 (a sharded training step of 128 images, alternating):

        - two input channels or more: the simple net's 8 -> 16 channel convolution
          (72 patch rows on 28x28) 23.1 -> 17.6 ms a step as blocks, 2 -> 16
          channels 12.9 -> 11.7 ms, 4 -> 16 a tie; VGG11's first convolution on RGB
          images (27 rows) 528 -> 507 ms. A first layer's one channel ties (LeNet's
          5x5 7.2 against 7.0 ms, the default network's 3x3 20.1 against 20.8):
          im2col, as its columns are few;
        - an output not much narrower than its input (no padding, a large kernel on
          a small map): the buffer holds ``row / Wo`` positions per output, and its
          patch copies move short lines. LeNet's second 5x5 on 12x12 maps (12
          positions per 8 outputs): LeNet's step took 10.0 ms with it shifted
          against 7.4 ms with im2col; ResNet's 3x3 'same' convolutions have 8 per 7
          on 7x7 maps.
        """
        row = self.width + self.left
        rows = len(self.offsets) * self.channels                   # patch rows
        return self.channels > 1 and rows >= 18 and row <= 1.25 * self.out_hw[1]

    @property
    def size(self) -> int:
        """Flat positions of the grid: ``Ho * row * N``."""
        return self.out_hw[0] * (self.width + self.left) * self.n

    @property
    def length(self) -> int:
        """Flat length of a buffer: the grid, then the values the last shifts read."""
        return self.offsets[-1] + self.size

    def _rows(self, buffer: np.ndarray) -> np.ndarray:
        """(C, top + H + bottom, row, N) view of a (C, length) buffer's padded rows."""
        rows = self.top + self.height + self.bottom
        row = self.width + self.left
        return buffer[:, :rows * row * self.n].reshape(len(buffer), rows, row, self.n)

    def pixels(self, buffer: np.ndarray) -> np.ndarray:
        """(C, H, W, N) view of the image pixels inside a (C, length) buffer."""
        return self._rows(buffer)[:, self.top:self.top + self.height, self.left:]

    def valid(self, grid: np.ndarray) -> np.ndarray:
        """(O, Ho, Wo, N) view of the real outputs inside an (O, size) grid."""
        ho, wo = self.out_hw
        return grid.reshape(len(grid), ho, self.width + self.left, self.n)[:, :, :wo]

    def to_buffer(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Copy images (N, C, H, W) into a zero-padded (C, length) buffer; ``out``, a
        buffer of this layout filled before (whose gaps are still zero), is reused."""
        if out is None or out.shape != (self.channels, self.length) or out.dtype != x.dtype:
            out = np.zeros((self.channels, self.length), dtype=x.dtype)
        self.pixels(out)[...] = x.transpose(1, 2, 3, 0)
        return out

    def gradient_grid(self, channels: int, dtype, out: np.ndarray | None = None
                      ) -> np.ndarray:
        """A zero (channels, reach + length) array, ``reach = offsets[-1]``, for an
        output gradient (:func:`shifted_conv_backward`): ``reach`` zeros, then a
        grid, then zeros to a buffer's length. ``out``, one made before into which
        only a grid's real positions were written since, is reused (the rest is
        still zero)."""
        shape = (channels, self.offsets[-1] + self.length)
        if out is None or out.shape != shape or out.dtype != dtype:
            out = np.zeros(shape, dtype=dtype)
        return out

    def shifts(self, reach: int | None = None) -> Shifts:
        """The kernel offsets' shifts as a :class:`Shifts` grid; with ``reach``, the
        flipped kernel's, ``reach - offset`` each (the input gradient's)."""
        (kh, kw), first = self.kernel, self.offsets[0]
        down, right = (self.width + self.left) * self.n, self.n   # one row, one pixel
        if reach is None:
            return Shifts(first, down, right, kh, kw)
        return Shifts(reach - first, -down, -right, kh, kw)

    def output_lines(self) -> Lines:
        """Where the real outputs lie in the grid: ``Ho`` lines of ``Wo * N``
        positions, a grid row apart (the positions past ``Wo`` straddle a gap)."""
        ho, wo = self.out_hw
        return Lines(0, ho, wo * self.n, (self.width + self.left) * self.n)

    def pixel_lines(self) -> Lines:
        """Where the image pixels lie in a buffer: ``H`` lines of ``W * N`` positions,
        a buffer row apart, after ``top`` zero rows and ``left`` zero columns."""
        row = (self.width + self.left) * self.n
        return Lines(self.top * row + self.left * self.n, self.height, self.width * self.n, row)


def block_columns(n_offsets: int, channels: int) -> int:
    """Columns per block: :data:`BLOCK_VALUES` patch values of ``channels`` channels."""
    return max(BLOCK_VALUES // (n_offsets * channels), 1)


@dataclass(frozen=True)
class Shifts:
    """The shifts of a ``kh x kw`` kernel's offsets along a flat row, row-major:
    offset ``(i, j)`` is ``first + i * down + j * right``."""

    first: int
    down: int
    right: int
    kh: int
    kw: int

    def __len__(self) -> int:
        return self.kh * self.kw


@dataclass(frozen=True)
class Lines:
    """The positions a shifted convolution computes, without the zero gaps of the
    flat layout between them: ``count`` lines of ``width`` consecutive positions,
    line ``r`` starting at position ``start + r * step`` of a flat row. Position
    ``i`` of the computed ones (line after line) is ``i // width`` lines down and
    ``i % width`` along: a block ``(begin, end)`` of them is whole lines, or a piece
    of one line (:meth:`blocks`)."""

    start: int
    count: int
    width: int
    step: int

    @property
    def size(self) -> int:
        """Positions in all the lines."""
        return self.count * self.width

    def blocks(self, columns: int) -> list[tuple[int, int]]:
        """``(begin, end)`` blocks covering ``range(size)`` once, of ``columns``
        positions or fewer, and at least one for every :func:`~.threads.block_threads` worker:
        whole lines when a line fits, each line cut in equal pieces when it does
        not."""
        w = self.width
        columns = max(min(columns, self.size // block_workers()), 1)
        if columns >= w:
            m = columns // w                                       # lines a block
            return [(r * w, min(r + m, self.count) * w) for r in range(0, self.count, m)]
        piece = -(-w // -(-w // columns))                          # equal pieces of a line
        return [(r * w + b, r * w + min(b + piece, w))
                for r in range(self.count) for b in range(0, w, piece)]


class ShiftedPatches:
    """im2col of a flat layout one block at a time: ``patches(begin, end)`` is
    (len(shifts) * C, end - begin), rows ordered (shift, channel), for the block
    ``(begin, end)`` of the positions ``lines`` describes (:meth:`Lines.blocks`):
    position ``t`` of a flat row reads ``source[:, shift_k + t]`` at shift ``k``.

    The ``kh * kw`` shifts of a block are read as one strided view, (kh, kw, C,
    lines, width), and copied in one call into a scratch array of ``columns``
    columns made once for all the blocks of a call (one per block would fault its
    megabytes in every time). A block then costs two NumPy calls, this copy and
    the product after it, and little Python between them: a shard's thread hands
    Python's GIL over at every call and holds it in between, and on two cores the
    other shard's thread waits for it. ``source`` is C-contiguous.
    """

    def __init__(self, source: np.ndarray, shifts: Shifts, lines: Lines, columns: int):
        (c, row), item = source.shape, source.itemsize
        self.source, self.lines = source, lines
        self.first = shifts.first + lines.start
        self.shape = (shifts.kh, shifts.kw, c)
        self.strides = (shifts.down * item, shifts.right * item, row * item,
                        lines.step * item, item)
        self.scratch = np.empty((len(shifts) * c, columns), dtype=source.dtype)  # (K*C, cols)
        self.into: dict[tuple[int, int], np.ndarray] = {}  # (lines, width) -> a view

    def __call__(self, begin: int, end: int) -> np.ndarray:
        line, along = divmod(begin, self.lines.width)
        if end - begin <= self.lines.width - along:
            lines, width = 1, end - begin                  # a piece of one line
        else:
            lines, width = (end - begin) // self.lines.width, self.lines.width
        source, shape = self.source, (*self.shape, lines, width)
        # (kh, kw, C, lines, width), a view of source's memory (NumPy checks it fits)
        view = np.ndarray(shape, source.dtype, source, (
            self.first + line * self.lines.step + along) * source.itemsize, self.strides)
        into = self.into.get((lines, width))
        if into is None:                                   # the first block of its shape
            into = self.into[lines, width] = self.scratch[:, :end - begin].reshape(shape)
        into[...] = view
        return self.scratch[:, :end - begin]                               # (K*C, m)


def shifted_conv(buffer: np.ndarray, weight_rows: np.ndarray, flat: FlatImages
                 ) -> np.ndarray:
    """Stride-1 convolution of images laid out as :class:`FlatImages`.

    ``weight_rows`` is the weight as (O, kh*kw*C), ordered like the patch rows. The
    real outputs (:meth:`FlatImages.output_lines`: the grid without its gap
    positions, which nothing needs) are computed one block at a time: the block's
    patches are copied (``kh*kw`` strided slices) and multiplied while they are
    still in the cache. Returns the outputs as a new (O, Ho, Wo, N) array, laid out
    like im2col's.
    """
    out = _convolve_lines(buffer, weight_rows, flat.shifts(), flat.output_lines())
    return out.reshape(len(out), *flat.out_hw, flat.n)                   # (O, Ho, Wo, N)


def _convolve_lines(source: np.ndarray, weight_rows: np.ndarray, shifts: Shifts,
                    lines: Lines) -> np.ndarray:
    """``weight_rows @ patches`` at the positions ``lines`` describes, block by block
    (:class:`ShiftedPatches`), the blocks shared out to :func:`~.threads.map_blocks`:
    (O, lines.size). The forward pass and the input gradient are both this."""
    columns = block_columns(len(shifts), len(source))
    out = np.empty((len(weight_rows), lines.size), dtype=source.dtype)   # (O, m)

    def work(share):
        patches = ShiftedPatches(source, shifts, lines, columns)
        for begin, end in share:
            np.matmul(weight_rows, patches(begin, end), out=out[:, begin:end])  # (K*C, m)

    map_blocks(work, lines.blocks(columns))
    return out


def shifted_conv_backward(buffer: np.ndarray, dout: np.ndarray, weight_rows: np.ndarray,
                          flat: FlatImages, input_grad: bool = True,
                          padded: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradients of :func:`shifted_conv`: ``(dweight_rows, dx)``, dx (C, H, W, N).

    The weight gradient is ``dout @ cols^T``, block by block, the patches copied
    again (cheaper, in the cache, than keeping the whole batch's since the forward
    pass). The input gradient of a stride-1 convolution is itself one: buffer
    position ``t`` received ``W_k @ buffer[t]`` at every output ``t - s_k``, so
    ``dbuffer[t] = sum_k W_k^T @ dgrid[t - s_k]``, the output gradient convolved
    with the flipped kernel. ``dout`` goes into a zero grid for it (``reach = max
    s_k`` zeros before it; its gap positions get no gradient), and the sums are
    computed on shifted slices of that grid, like the forward pass, for the
    buffer's pixels only (:meth:`FlatImages.pixel_lines`). dx is None when
    ``input_grad`` is False. ``padded``, the zero array the grid lies in
    (:meth:`FlatImages.gradient_grid`) from an earlier call, is filled again: only
    the real positions are written, so no megabytes are zeroed and faulted in anew.
    """
    o, c, n_offsets = len(weight_rows), flat.channels, len(flat.offsets)
    lines, shifts = flat.output_lines(), flat.shifts()
    dout_rows = dout.reshape(o, lines.size)                              # (O, Ho*Wo*N)
    columns = block_columns(n_offsets, c)

    # dweight^T += cols @ dout^T: the same sums, the long dimension m as the
    # product's rows, which BLAS runs 15-20 % faster for 16-32 output channels
    def weight_work(share):
        patches = ShiftedPatches(buffer, shifts, lines, columns)
        # each block's product in a slot of its own, all added up in one call at the end
        products = np.empty((len(share), *weight_rows.shape[::-1]), dtype=buffer.dtype)
        for product, (begin, end) in zip(products, share, strict=True):    # (K*C, O)
            np.matmul(patches(begin, end), dout_rows[:, begin:end].T, out=product)
        return products.sum(axis=0)                                         # (K*C, O)

    dweight = sum(map_blocks(weight_work, lines.blocks(columns))).T         # (O, K*C)
    if not input_grad:
        return dweight, None
    reach = flat.offsets[-1]
    padded = flat.gradient_grid(o, buffer.dtype, out=padded)               # (O, reach+length)
    flat.valid(padded[:, reach:reach + flat.size])[...] = dout
    # (O, K*C) -> (C, K*O): W_k^T side by side, ordered like the shifted grid's rows
    flipped = weight_rows.reshape(o, n_offsets, c).transpose(2, 1, 0).reshape(c, -1)
    dx = _convolve_lines(padded, flipped, flat.shifts(reach), flat.pixel_lines())
    return dweight, dx.reshape(c, flat.height, flat.width, flat.n)         # (C, H, W, N)


#: dot products that :func:`row_dots` computes at least. NumPy's ``matmul`` holds
#: Python's GIL through a stack of fewer than 500 products (it hands the GIL over
#: only for more), and a shard's thread that holds the GIL stalls the others: 16
#: rows of 50,176 values, 0.24 ms, ran no faster on two threads than on one.
ROW_DOT_PIECES = 512


def row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a * b).sum(axis=1)`` of two (R, M) arrays, as dot products in BLAS.

    No (R, M) product is written and read back: a BatchNorm's variance and weight
    gradient on 16 maps of 28x28 for 128 images took 0.83 and 1.03 ms that way,
    0.23 and 0.47 ms as dot products (on 2 cores). Each row is cut into equal
    pieces, at least :data:`ROW_DOT_PIECES` dot products in all, whose sums are then
    added (the last ``M % pieces`` values of a row on their own): BLAS sums each
    piece in several float32 accumulators, within 3e-7 (relative) of a float64 sum.
    """
    r, m = a.shape
    pieces = max(min(-(-ROW_DOT_PIECES // max(r, 1)), m), 1)  # a row's pieces
    length = m // pieces
    whole = pieces * length
    dots = (a[:, :whole].reshape(r, pieces, 1, length)
            @ b[:, :whole].reshape(r, pieces, length, 1))        # (R, pieces, 1, 1)
    sums = dots.reshape(r, pieces).sum(axis=1)                   # (R,)
    if whole < m:
        sums += (a[:, whole:] * b[:, whole:]).sum(axis=1)
    return sums
