import numpy as np
import pytest

from sklearn_cnn._input import to_images


def test_layouts_become_nchw_float32():
    rng = np.random.default_rng(0)
    hw = rng.random((5, 6, 7))
    assert to_images(hw).shape == (5, 1, 6, 7)
    assert to_images(rng.random((5, 3, 6, 7))).shape == (5, 3, 6, 7)
    last = rng.random((5, 6, 7, 3)).astype(np.float32)
    images = to_images(last)
    assert images.shape == (5, 3, 6, 7) and images.dtype == np.float32
    np.testing.assert_array_equal(images[:, 2], last[..., 2])
    assert images.flags.c_contiguous


def test_float64_stays_float64_and_everything_else_becomes_float32():
    # as in MLPClassifier: float64 input is computed in float64
    assert to_images(np.zeros((2, 4, 4))).dtype == np.float64
    assert to_images(np.zeros((2, 4, 4), dtype=np.uint8)).dtype == np.float32
    assert to_images(np.zeros((2, 4, 4), dtype=np.int64)).dtype == np.float32
    assert to_images(np.zeros((2, 4, 4), dtype=np.float16)).dtype == np.float32


def test_channels_parameter_overrides_detection():
    X = np.zeros((2, 3, 5, 3))  # ambiguous: both axes could be channels
    assert to_images(X).shape == (2, 3, 5, 3)  # auto: second axis is 3, so first
    assert to_images(X, channels="last").shape == (2, 3, 3, 5)
    assert to_images(np.zeros((2, 8, 8, 1)), channels="first").shape == (2, 8, 8, 1)


def test_flat_input():
    assert to_images(np.zeros((4, 64))).shape == (4, 1, 8, 8)   # square: one channel
    assert to_images(np.zeros((4, 10))).shape == (4, 1, 1, 10)  # otherwise a row
    assert to_images(np.zeros((4, 48)), input_shape=(3, 4, 4)).shape == (4, 3, 4, 4)
    with pytest.raises(ValueError, match=r"48 features.*needs 64"):
        to_images(np.zeros((4, 48)), input_shape=(1, 8, 8))


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="NaN"):
        to_images(np.full((2, 4, 4), np.nan))
    with pytest.raises(ValueError, match="infinity"):
        to_images(np.full((2, 4, 4), np.inf))
    with pytest.raises(ValueError, match=r"2 to 4 dimensions.*got 5"):
        to_images(np.zeros((2, 1, 4, 4, 1)))
    with pytest.raises(ValueError, match="2D array"):
        to_images(np.zeros(16))
    with pytest.raises(ValueError, match="input_shape is"):
        to_images(np.zeros((2, 4, 4)), input_shape=(1, 5, 5))


def test_caller_array_is_not_modified_or_aliased_when_converted():
    X = np.arange(2 * 5 * 5 * 3, dtype=np.float64).reshape(2, 5, 5, 3)
    before = X.copy()
    images = to_images(X)
    images += 1
    np.testing.assert_array_equal(X, before)


def test_uint8_pixels_are_scaled_as_torchvision_totensor():
    pixels = np.arange(0, 256, dtype=np.uint8).reshape(4, 8, 8)
    images = to_images(pixels)
    assert images.dtype == np.float32 and images.max() == 1.0
    np.testing.assert_allclose(images[:, 0], pixels / 255, rtol=1e-6)


def test_raw_uint8_images_train_as_the_divided_ones(digits):
    from sklearn_cnn import CNNClassifier

    X, X_test, y, _ = digits
    raw, raw_test = (np.round(X * 255).astype(np.uint8), np.round(X_test * 255).astype(np.uint8))
    scaled = CNNClassifier(max_iter=3, random_state=0).fit(raw / np.float32(255), y)
    unscaled = CNNClassifier(max_iter=3, random_state=0).fit(raw, y)
    np.testing.assert_allclose(unscaled.predict_proba(raw_test),
                               scaled.predict_proba(raw_test / np.float32(255)), atol=1e-6)


def test_whole_numbers_up_to_255_in_floats_warn(digits):
    from sklearn_cnn import CNNClassifier

    X, _, y, _ = digits
    with pytest.warns(UserWarning, match="0-255 pixel values"):
        CNNClassifier(max_iter=1).fit(np.round(X[:60] * 255), y[:60])


def test_flattened_colour_images_are_refused_with_the_shape_to_pass():
    rows = np.zeros((4, 3072), dtype=np.float32)
    with pytest.raises(ValueError, match=r"3 x 32 x 32.*input_shape=\(3, 32, 32\)"):
        to_images(rows)
    assert to_images(rows, input_shape=(3, 32, 32)).shape == (4, 3, 32, 32)
    assert to_images(np.zeros((4, 7)), input_shape=None).shape == (4, 1, 1, 7)  # features
    assert to_images(np.zeros((4, 12))).shape == (4, 1, 1, 12)  # 3 x 2 x 2: too small to be


def test_long_non_square_rows_are_refused_short_ones_are_features():
    with pytest.raises(ValueError, match=r"101 features.*not a square.*input_shape=\(C, H, W\)"
                                         r".*input_shape=\(1, 1, 101\)"):
        to_images(np.zeros((4, 101)))
    assert to_images(np.zeros((4, 101)), input_shape=(1, 1, 101)).shape == (4, 1, 1, 101)
    assert to_images(np.zeros((4, 63))).shape == (4, 1, 1, 63)  # tabular features
    assert to_images(np.zeros((4, 64))).shape == (4, 1, 8, 8)  # a square


def test_a_tensor_numpy_cannot_read_is_a_type_error_saying_what_to_pass():
    torch = pytest.importorskip("torch")
    X = torch.zeros((4, 8, 8), requires_grad=True)
    with pytest.raises(TypeError, match=r"X\.detach\(\)\.cpu\(\)\.numpy\(\)"):
        to_images(X)

def test_uint8_pixels_can_stay_uint8_for_prediction():
    X = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    kept = to_images(X, keep_pixels=True)
    assert kept.dtype == np.uint8 and kept.shape == (5, 3, 8, 8)
    assert np.shares_memory(kept, X)  # a view: nothing copied
    np.testing.assert_array_equal(to_images(X), kept / np.float32(255))
