"""The NumPy backend's array functions (backends/numpy/functional.py)."""

import itertools

import numpy as np
import pytest
import reference

from sklearn_cnn.backends.numpy import functional, threads
from sklearn_cnn.backends.numpy.functional import (
    FlatImages,
    col2im,
    im2col,
    pad,
    row_dots,
)


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), g> == <x, col2im(g)> for any x, g: the defining property
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 7, 6))
    for kernel, stride in [((3, 3), (1, 1)), ((2, 3), (2, 1)), ((3, 2), (2, 2))]:
        cols = im2col(x, kernel, stride)
        g = rng.normal(size=cols.shape)
        np.testing.assert_allclose(np.sum(cols * g),
                                   np.sum(x * col2im(g, x.shape, kernel, stride)))


def test_conv_in_blocks_is_the_im2col_product_plus_bias(monkeypatch):
    """Blocks of two output rows over seven (a short last one), in float32 too."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 9, 8))
    weight, bias = rng.normal(size=(4, 3 * 3 * 2)), rng.normal(size=4)
    kernel, stride, padding = (3, 2), (1, 2), (0, 0, 1, 0)
    cols = im2col(x, kernel, stride, padding=padding)                  # (18, 7*4*5)
    expected = (weight @ cols + bias[:, None]).reshape(4, 7, 4, 5)      # (O, Ho, Wo, N)
    monkeypatch.setattr(functional, "PREDICT_BLOCK_VALUES", 2 * 18 * 4 * 5)
    out = functional.conv_in_blocks(x, weight, bias, kernel, stride, padding)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    out = functional.conv_in_blocks(x, weight, None, kernel, stride, padding)
    np.testing.assert_allclose(out, expected - bias[:, None, None, None], rtol=1e-12)
    single = functional.conv_in_blocks(*(a.astype(np.float32) for a in (x, weight, bias)),
                                       kernel, stride, padding)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel,stride,padding,in_hw", [
    ((3, 3), (1, 1), (1, 1, 1, 1), (8, 8)), ((5, 5), (1, 1), (0, 0, 0, 0), (12, 11)),
    ((3, 2), (1, 2), (0, 1, 2, 0), (9, 13)), ((2, 2), (2, 2), (1, 0, 0, 1), (7, 7))])
def test_window_weights_make_a_convolution_and_its_2x2_max_pool_one(
        kernel, stride, padding, in_hw, monkeypatch):
    """The four outputs of every pooling window as one convolution, reduced to their
    maximum block by block: the convolution then the pool (floor mode: an odd last
    row or column of outputs belongs to no window), with and without a bias, in
    blocks of one row of windows and of the whole map."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, *in_hw))
    weight, bias = rng.normal(size=(4, 2, *kernel)), rng.normal(size=4)
    for block_values in (1, 2**16):
        monkeypatch.setattr(functional, "PREDICT_BLOCK_VALUES", block_values)
        for b in (bias, None):
            conv = reference.conv2d(x, weight, np.zeros(4) if b is None else b, stride,
                                    padding)                         # (N, O, Ho, Wo)
            expected = reference.pool2d(conv, (2, 2), (2, 2), np.max)
            windows, window_bias, window_kernel, window_stride = functional.window_weights(
                weight, b, stride)
            out = functional.conv_in_blocks(x, windows, window_bias, window_kernel,
                                            window_stride, padding, window_max=True)
            np.testing.assert_allclose(out.transpose(3, 0, 1, 2), expected, rtol=1e-12,
                                       atol=1e-12)


def test_convolutions_pool_in_windows_where_that_was_measured_to_pay():
    """Where the product has few weight rows: large kernels to up to 64 outputs,
    3x3 from few channels or to few outputs; never a kernel whose windows would
    double the products or more (1x1, 2x2, stride 2)."""
    pays = functional.pools_in_windows
    assert pays(1, 16, (3, 3), (1, 1))       # the default network's first convolution
    assert not pays(16, 32, (3, 3), (1, 1))  # ... and its second
    assert pays(8, 16, (3, 3), (1, 1))       # simple's second
    assert pays(6, 16, (5, 5), (1, 1))       # LeNet's second
    assert pays(3, 128, (3, 3), (1, 1)) and pays(64, 16, (3, 3), (1, 1))
    assert not pays(64, 64, (3, 3), (1, 1))
    assert pays(64, 64, (7, 7), (1, 1)) and pays(4, 128, (5, 5), (1, 1))
    assert not pays(32, 128, (5, 5), (1, 1))
    for kernel, stride in [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((3, 3), (2, 2))]:
        assert not pays(1, 16, kernel, stride)


def test_im2col_rows_are_patches():
    x = np.arange(2 * 1 * 4 * 4, dtype=float).reshape(2, 1, 4, 4)
    cols = im2col(x, (2, 2), (2, 2))  # (1*2*2, 2*2*2): one column per output position
    # columns ordered (Ho, Wo, N): the batch innermost
    np.testing.assert_array_equal(cols[:, 0], [0, 1, 4, 5])      # sample 0, top left
    np.testing.assert_array_equal(cols[:, 1], [16, 17, 20, 21])  # sample 1, top left
    np.testing.assert_array_equal(cols[:, 2], [2, 3, 6, 7])      # sample 0, top right
    np.testing.assert_array_equal(cols[:, 7], [26, 27, 30, 31])  # sample 1, bottom right


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("kernel,padding", [((3, 3), (1, 1, 1, 1)), ((5, 5), (0, 0, 0, 0)),
                                            ((2, 3), (1, 0, 0, 2)), ((1, 1), (0, 0, 0, 0))])
def test_shifted_conv_is_im2col_conv_and_its_backward_the_adjoint(kernel, padding, workers,
                                                                  monkeypatch):
    monkeypatch.setattr(functional, "BLOCK_VALUES", 100)  # many blocks, a short last one
    # with 3 workers the blocks are shared out to 3 threads (uneven shares)
    monkeypatch.setattr(threads._local, "workers", workers, raising=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 6, 7))
    weight = rng.normal(size=(4, 2, *kernel))
    flat = FlatImages.for_conv(x.shape, kernel, padding)
    buffer = flat.to_buffer(x)
    np.testing.assert_array_equal(flat.pixels(buffer), x.transpose(1, 2, 3, 0))
    rows = weight.transpose(0, 2, 3, 1).reshape(4, -1)
    out = functional.shifted_conv(buffer, rows, flat)                    # (O, Ho, Wo, N)
    cols = im2col(pad(x, padding), kernel, (1, 1))
    # im2col's columns are ordered (Ho, Wo, N), like the grid's real positions
    expected = (weight.reshape(4, -1) @ cols).reshape(4, *flat.out_hw, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # <conv(buffer), g> == <buffer, dbuffer> and == <weight, dweight>: the backward is
    # the adjoint of the forward in both arguments
    g = rng.normal(size=out.shape)
    drows, dx = functional.shifted_conv_backward(buffer, g, rows, flat)     # (C, H, W, N)
    np.testing.assert_allclose(np.sum(out * g), np.sum(x.transpose(1, 2, 3, 0) * dx))
    np.testing.assert_allclose(np.sum(out * g), np.sum(rows * drows))
    assert functional.shifted_conv_backward(buffer, g, rows, flat, input_grad=False)[1] is None
    # a zero grid kept from an earlier call is filled again: the same gradients
    padded = flat.gradient_grid(4, buffer.dtype)
    for g in (rng.normal(size=out.shape), rng.normal(size=out.shape)):
        fresh = functional.shifted_conv_backward(buffer, g, rows, flat)
        again = functional.shifted_conv_backward(buffer, g, rows, flat, padded=padded)
        for a, b in zip(fresh, again, strict=True):
            np.testing.assert_array_equal(a, b)
    assert flat.gradient_grid(4, buffer.dtype, out=padded) is padded


@pytest.mark.parametrize("count,width", [(5, 10), (3, 7), (1, 1), (4, 1), (2, 30)])
def test_line_blocks_give_every_worker_a_share_and_cover_the_lines_once(count, width):
    lines = functional.Lines(start=3, count=count, width=width, step=width + 2)
    for workers, columns in [(1, 1000), (1, 4), (4, 1000), (3, 6), (8, 1)]:
        with threads.block_threads(workers):
            blocks = lines.blocks(columns)
            shares = threads.map_blocks(lambda share: share, blocks)
        assert blocks[0][0] == 0 and blocks[-1][1] == lines.size
        assert all(end == begin for (_, end), (begin, _) in itertools.pairwise(blocks))
        assert all(0 < end - begin <= columns for begin, end in blocks)
        # whole lines, or a piece of one line
        for begin, end in blocks:
            whole = begin % width == 0 and end % width == 0
            assert whole or begin // width == (end - 1) // width
        assert len(shares) == min(workers, lines.size)
        assert sorted(b for share in shares for b in share) == blocks
    assert threads.block_workers() == 1  # the context is left as it was


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_dots_are_the_row_sums_of_the_product(dtype):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(5, 30_000)) * 3 + 2).astype(dtype)
    b = rng.normal(size=(5, 30_000)).astype(dtype)
    exact = (a.astype(np.float64) * b).sum(axis=1)
    got = row_dots(a, b)
    assert got.shape == (5,) and got.dtype == dtype
    scale = (np.abs(a.astype(np.float64)) * np.abs(b)).sum(axis=1)
    assert np.all(np.abs(got - exact) <= (1e-6 if dtype == np.float32 else 1e-13) * scale)
    # rows that are not contiguous (the (C, N) rows of a batch of vectors)
    np.testing.assert_allclose(row_dots(a[:, ::3], b[:, ::3]),
                               (a[:, ::3].astype(np.float64) * b[:, ::3]).sum(axis=1),
                               rtol=1e-5)


@pytest.mark.parametrize("shape", [(600, 40), (3, 7), (1, 1), (64, 3137), (2, 0)])
def test_row_dots_cut_into_pieces_and_a_remainder(shape):
    # rows cut into pieces (ROW_DOT_PIECES dot products at least) and the values
    # left over: every value counted once, whatever the shape
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    np.testing.assert_allclose(row_dots(a, b), (a * b).sum(axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reach", [None, "flipped"])
def test_shifted_patches_are_the_slices_at_each_shift(reach):
    rng = np.random.default_rng(2)
    flat = FlatImages.for_conv((3, 2, 5, 6), (3, 2), (1, 1, 0, 1))
    source = rng.normal(size=(2, flat.offsets[-1] + flat.length))
    offsets = flat.offsets
    lines = flat.output_lines()
    if reach == "flipped":  # the input gradient's shifts: reach - offset each
        reach = flat.offsets[-1]
        offsets = tuple(reach - offset for offset in flat.offsets)
        lines = flat.pixel_lines()
    # the flat positions of the lines, one after the other
    positions = (lines.start + lines.step * np.arange(lines.count)[:, None]
                 + np.arange(lines.width)).ravel()
    patches = functional.ShiftedPatches(source, flat.shifts(reach), lines, 2 * lines.width)
    w = lines.width
    # whole lines (two, then one), pieces of a line, and the same shapes again
    for begin, end in [(0, 2 * w), (w, 2 * w), (w + 1, 2 * w - 1), (0, 2 * w), (1, w)]:
        got = patches(begin, end)
        expected = np.concatenate([source[:, k + positions[begin:end]] for k in offsets])
        np.testing.assert_array_equal(got, expected)
