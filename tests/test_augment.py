"""Augmentations: seeded, vectorized, input left alone, pixels moved as documented."""

import numpy as np
import pytest

from sklearn_cnn.augment import (
    AUGMENTATIONS,
    HALF_PIXEL_MOVES,
    affine,
    half_pixel_move,
    prediction_views,
    random_affine,
    random_erasing,
    random_flip,
    random_rotation,
    random_shift,
    random_small_shift,
    resolve,
    rotate,
)


def test_augmentations_are_random_seeded_and_leave_the_input_alone():
    rng = np.random.default_rng(0)
    x = rng.random((16, 2, 9, 9)).astype(np.float32)
    before = x.copy()
    for augment in (random_flip, random_shift, random_rotation, resolve("standard")):
        out = augment(x, np.random.default_rng(1))
        assert out.shape == x.shape and out.dtype == x.dtype
        np.testing.assert_array_equal(out, augment(x, np.random.default_rng(1)))
        assert not np.array_equal(out, x)
    np.testing.assert_array_equal(x, before)


def test_augmentations_move_pixels_as_they_say():
    x = np.zeros((64, 1, 5, 5), dtype=np.float32)
    x[:, 0, 2, 0] = 1.0  # a dot on the left edge
    flipped = random_flip(x, np.random.default_rng(0))
    moved = flipped[:, 0, 2, 4] == 1.0
    assert 15 < moved.sum() < 49  # about half mirrored to the right edge
    assert np.all(flipped[~moved] == x[~moved])
    shifted = random_shift(x, np.random.default_rng(0))  # up to 1 pixel on 5 px
    assert np.all(shifted.sum(axis=(1, 2, 3)) <= 1.0) and shifted.sum() > 30
    rotated = random_rotation(np.ones((4, 1, 9, 9), dtype=np.float32),
                              np.random.default_rng(0), degrees=0.0)
    np.testing.assert_allclose(rotated, 1.0, atol=1e-6)


def blob(side: int, n: int = 32) -> np.ndarray:
    """n copies of a smooth bump in the middle of a side x side image."""
    yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    centre = (side - 1) / 2
    image = np.exp(-((yy - centre) ** 2 + (xx - centre) ** 2) / (side / 8) ** 2)
    return np.repeat(image[None, None], n, axis=0).astype(np.float32)


def centre_of_mass(x: np.ndarray) -> np.ndarray:
    """(N, 2) row and column centres of mass of each image's first channel."""
    mass = x[:, 0]
    rows, cols = np.arange(x.shape[2]), np.arange(x.shape[3])
    total = mass.sum(axis=(1, 2))
    return np.stack([(mass.sum(axis=2) * rows).sum(axis=1) / total,
                     (mass.sum(axis=1) * cols).sum(axis=1) / total], axis=1)


def test_every_named_augmentation_keeps_shape_dtype_and_is_seeded():
    x = np.random.default_rng(0).random((8, 3, 12, 10)).astype(np.float32)
    for name, augment in AUGMENTATIONS.items():
        out = augment(x, np.random.default_rng(5))
        assert out.shape == x.shape and out.dtype == x.dtype, name
        np.testing.assert_array_equal(out, augment(x, np.random.default_rng(5)), name)


def test_affine_without_change_is_the_identity():
    x = np.random.default_rng(0).random((4, 2, 7, 9)).astype(np.float32)
    same = random_affine(x, np.random.default_rng(0), degrees=0.0, shear=0.0,
                         scale=(1.0, 1.0), translate=0.0)
    np.testing.assert_allclose(same, x, atol=1e-6)


def test_affine_zoom_magnifies_about_the_centre():
    x = blob(16)
    zoomed = random_affine(x, np.random.default_rng(0), degrees=0.0, shear=0.0,
                           scale=(2.0, 2.0), translate=0.0)
    # twice the size in each direction: four times the mass, the same centre
    np.testing.assert_allclose(zoomed.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3)), 4.0,
                               rtol=0.05)
    np.testing.assert_allclose(centre_of_mass(zoomed), 7.5, atol=1e-4)


def test_rotation_and_shear_keep_the_mass_and_the_centre():
    x = blob(16)
    turned = random_affine(x, np.random.default_rng(0), degrees=30.0, shear=20.0,
                           scale=(1.0, 1.0), translate=0.0)
    assert not np.allclose(turned, x)
    np.testing.assert_allclose(turned.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=0.03)
    np.testing.assert_allclose(centre_of_mass(turned), 7.5, atol=0.05)


@pytest.mark.parametrize("side,whole_pixels", [(8, False), (13, False), (14, True),
                                               (28, True)])
def test_small_shift_moves_by_at_most_a_fourteenth(side, whole_pixels):
    x = blob(side, n=200)
    shifted = random_small_shift(x, np.random.default_rng(0))
    moves = centre_of_mass(shifted) - centre_of_mass(x)
    limit = side / 14 if not whole_pixels else max(1, round(side / 14))
    assert np.abs(moves).max() <= limit + 1e-3
    assert np.abs(moves).max() > 0.6 * limit  # and does move, in both directions
    assert (moves < -0.1).any() and (moves > 0.1).any()
    fractional = np.abs(moves - np.round(moves)) > 0.05
    if whole_pixels:  # padding and cropping: every pixel is one of the image's own
        assert not fractional.any()
        assert np.isin(shifted, np.append(x[0], 0.0)).all()
    else:  # a fraction of a pixel, by interpolation
        assert fractional.mean() > 0.5


def test_rotate_turns_images_clockwise_about_their_centre():
    x = np.zeros((2, 1, 5, 5), dtype=np.float32)
    x[:, 0, 0, 2] = 1.0  # a dot at the top centre
    np.testing.assert_allclose(rotate(x, 0.0), x, atol=1e-6)
    quarter = rotate(x, [90.0, -90.0])
    assert quarter[0, 0, 2, 4] == pytest.approx(1.0)  # clockwise: to the right edge
    assert quarter[1, 0, 2, 0] == pytest.approx(1.0)  # anticlockwise: to the left edge
    np.testing.assert_allclose(rotate(rotate(x, 90.0), -90.0), x, atol=1e-6)
    assert rotate(x, 45.0).dtype == np.float32


def test_random_erasing_zeroes_one_rectangle_in_about_half_the_images():
    x = np.ones((400, 2, 20, 10), dtype=np.float32)
    out = random_erasing(x, np.random.default_rng(0))
    zeroed = out[:, 0] == 0                                            # (N, H, W)
    np.testing.assert_array_equal(zeroed, out[:, 1] == 0)  # every channel alike
    erased = zeroed.any(axis=(1, 2))
    assert 160 < erased.sum() < 240
    areas = zeroed.sum(axis=(1, 2))[erased] / 200
    assert areas.min() >= 0.005 and areas.max() <= 0.5
    for mask in zeroed[erased]:  # a full rectangle: rows x columns it touches
        rows, cols = mask.any(axis=1), mask.any(axis=0)
        np.testing.assert_array_equal(mask, rows[:, None] & cols[None, :])
        assert np.ptp(np.flatnonzero(rows)) == rows.sum() - 1  # contiguous
        assert np.ptp(np.flatnonzero(cols)) == cols.sum() - 1
    # the whole 20x10 image: 20 rows by 10 columns; a square of its area (14.1 px a
    # side) is cut to the 10 columns
    whole = random_erasing(x, np.random.default_rng(1), p=1.0, area=(1.0, 1.0),
                           aspect=(2.0, 2.0))
    assert np.all(whole == 0)
    square = random_erasing(x, np.random.default_rng(1), p=1.0, area=(1.0, 1.0),
                            aspect=(1.0, 1.0))
    assert np.all((square[:, 0] == 0).sum(axis=(1, 2)) == 14 * 10)


def test_a_list_applies_its_steps_in_turn():
    x = np.random.default_rng(0).random((8, 1, 12, 12)).astype(np.float32)
    both = resolve(["flip", "erase"])(x, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(both, random_erasing(random_flip(x, rng), rng))
    mirrored = resolve([lambda batch: batch[..., ::-1], "flip"])
    assert mirrored(x, np.random.default_rng(0)).shape == x.shape
    with pytest.raises(ValueError, match="must not be an empty list"):
        resolve([])
    with pytest.raises(ValueError, match=r"one of .* or a list of them; got 'spin'"):
        resolve(["flip", "spin"])
    with pytest.raises(TypeError, match="a callable or a list of them; got int"):
        resolve(["flip", 3])


def test_half_pixel_moves_are_bilinear_half_pixel_shifts():
    x = np.random.default_rng(0).random((3, 2, 8, 9)).astype(np.float32)
    before = x.copy()
    n = len(x)
    for rows, cols in HALF_PIXEL_MOVES:
        moved = half_pixel_move(x, rows, cols)
        assert moved.dtype == np.float32
        np.testing.assert_allclose(moved, affine(x, np.zeros(n), np.zeros(n), np.ones(n),
                                                 np.full(n, rows / 2), np.full(n, cols / 2)),
                                   atol=1e-7)
    down = half_pixel_move(x, 1, 0)  # the first row: half of itself, zero above it
    np.testing.assert_allclose(down[:, :, 0], x[:, :, 0] / 2)
    np.testing.assert_allclose(down[:, :, 1:], (x[:, :, 1:] + x[:, :, :-1]) / 2)
    np.testing.assert_array_equal(x, before)
    pixels = (x * 255).astype(np.uint8)  # scaled to [0, 1] as the estimators scale them
    np.testing.assert_allclose(half_pixel_move(pixels, 0, -1),
                               half_pixel_move(pixels.astype(np.float32) / 255, 0, -1),
                               rtol=1e-6)


@pytest.mark.parametrize(("option", "size", "copies"), [
    ("auto", (8, 8), 4), ("auto", (13, 40), 4), ("auto", (14, 14), 0), ("auto", (28, 28), 0),
    ("auto", (1, 64), 0), ("auto", (7, 7), 0), ("shift", (28, 28), 4), ("flip", (8, 8), 1),
    (None, (8, 8), 0)])
def test_prediction_views(option, size, copies):
    """"auto" shifts where augment="auto" trains with sub-pixel shifts: 8-13 px sides."""
    assert len(prediction_views(option, size)) == copies
