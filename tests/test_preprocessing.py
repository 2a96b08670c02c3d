"""Image transformers on real image files the tests write (Pillow) and on
scikit-learn's bundled photos; nothing is downloaded."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_sample_images
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cnn import CNNClassifier
from sklearn_cnn.preprocessing import (
    ChannelStandardizer,
    FlatToImages,
    ImageLoader,
    ImagesToFlat,
    Resize,
    read_image,
    resize_images,
)

Image = pytest.importorskip("PIL.Image")


def write(path, array, **save):
    Image.fromarray(array).save(path, **save)
    return str(path)


@pytest.fixture
def gray(tmp_path):
    """A 10x16 greyscale gradient."""
    return np.tile(np.arange(16, dtype=np.uint8) * 16, (10, 1))


@pytest.mark.parametrize("suffix", ["png", "bmp", "tif", "gif"])
def test_lossless_formats_read_exactly(tmp_path, gray, suffix):
    path = write(tmp_path / f"g.{suffix}", gray)
    image = read_image(path, mode="L")
    assert image.shape == (1, 10, 16) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0], gray / np.float32(255))


def test_jpeg_and_rgb_channels(tmp_path):
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 250  # red
    image = read_image(write(tmp_path / "red.jpg", rgb, quality=95), mode="RGB")
    assert image.shape == (3, 8, 8)
    assert image[0].mean() > 0.9 and image[1:].mean() < 0.1


def test_a_gif_gives_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((6, 6), v, dtype=np.uint8)) for v in (0, 255)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(read_image(tmp_path / "a.gif", mode="L"), 0.0)


def test_exif_orientation_turns_photos_upright(tmp_path):
    tall = np.zeros((20, 10), dtype=np.uint8)
    tall[:5] = 255  # bright top rows
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display rotated 90 degrees clockwise
    write(tmp_path / "r.jpg", tall, exif=exif, quality=95)
    write(tmp_path / "r.png", tall, exif=exif)  # PNG's eXIf chunk, read the same way
    for name in ("r.jpg", "r.png"):
        upright = read_image(tmp_path / name, mode="L")
        assert upright.shape == (1, 10, 20)
        assert upright[0, :, -5:].mean() > 0.8  # the bright band is now on the right
    plain = read_image(write(tmp_path / "plain.png", tall), mode="L")
    np.testing.assert_array_equal(plain[0], tall / 255)  # no EXIF: as stored


def test_transparency_is_composed_onto_black(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:, :2, 3] = 255  # left half opaque white, right half transparent white
    path = write(tmp_path / "t.png", rgba)
    rgb = read_image(path, mode="RGB")
    np.testing.assert_array_equal(rgb[:, :, :2], 1.0)
    np.testing.assert_array_equal(rgb[:, :, 2:], 0.0)
    assert read_image(path, mode="RGBA").shape == (4, 4, 4)


def test_loader_decides_mode_and_size_at_fit(tmp_path, gray):
    paths = [write(tmp_path / f"{i}.png", gray) for i in range(3)]
    loader = ImageLoader().fit(paths)
    assert loader.mode_ == "L" and loader.image_shape_ == (1, 10, 16)
    colour = write(tmp_path / "c.png", np.zeros((10, 16, 3), dtype=np.uint8))
    assert ImageLoader().fit([*paths, colour]).image_shape_ == (3, 10, 16)
    other = write(tmp_path / "big.png", np.full((30, 30), 255, dtype=np.uint8))
    # an image of another size than the training ones is brought to theirs
    np.testing.assert_allclose(loader.transform([other]), 1.0)
    assert loader.transform([other]).shape == (1, 1, 10, 16)
    assert ImageLoader(size=(5, 8)).fit_transform([other]).shape == (1, 1, 5, 8)


def test_mixed_sizes_get_a_size_chosen_from_the_training_headers(tmp_path):
    sizes = [(20, 30), (24, 30), (40, 50), (24, 36), (600, 900)]  # (H, W)
    paths = [write(tmp_path / f"{i}.png", np.zeros(size, dtype=np.uint8))
             for i, size in enumerate(sizes)]
    loader = ImageLoader().fit(paths)
    assert loader.image_shape_ == (1, 24, 36)  # the median height and width
    assert "chosen from 5 training images of 5 sizes" in loader.size_note_
    assert "from 30x20 to 900x600" in loader.size_note_
    assert loader.transform(paths).shape == (5, 1, 24, 36)
    big = [write(tmp_path / f"big{i}.png", np.zeros((300 + i, 1000), dtype=np.uint8))
           for i in range(3)]
    loader = ImageLoader().fit(big)  # a median of 301x1000, scaled to 256 wide
    assert loader.image_shape_ == (1, 77, 256) and "scaled down" in loader.size_note_
    assert ImageLoader(size=8).fit(big).size_note_ == "8x8 pixels, as given"


def test_chosen_size_follows_exif_orientation(tmp_path):
    image = Image.fromarray(np.zeros((10, 30), dtype=np.uint8))  # 30 wide, 10 high
    exif = image.getexif()
    exif[0x0112] = 6  # turned by 90 degrees: upright it is 10 wide, 30 high
    path = tmp_path / "turned.jpg"
    image.save(path, exif=exif)
    plain = write(tmp_path / "plain.jpg", np.zeros((30, 10), dtype=np.uint8))
    loader = ImageLoader().fit([path, plain])
    assert loader.image_shape_ == (1, 30, 10) and "every training image" in loader.size_note_
    assert loader.transform([path]).shape == (1, 1, 30, 10)


def test_lazy_loader_decodes_only_what_is_asked(tmp_path, monkeypatch):
    from sklearn_cnn import _image_files

    paths = [write(tmp_path / f"{i}.png", np.full((6, 6), 40 * i, dtype=np.uint8))
             for i in range(6)]
    eager = ImageLoader().fit_transform(paths)
    lazy = ImageLoader(lazy=True).fit_transform(paths)
    assert lazy.shape == eager.shape and lazy.dtype == eager.dtype and len(lazy) == 6
    read = []
    original = _image_files.read_image
    monkeypatch.setattr(_image_files, "read_image",
                        lambda path, **kw: read.append(path) or original(path, **kw))
    np.testing.assert_array_equal(lazy[[5, 0, 3]], eager[[5, 0, 3]])
    assert sorted(map(str, read)) == sorted(str(paths[i]) for i in (0, 3, 5))
    np.testing.assert_array_equal(lazy[np.arange(6) % 2 == 0], eager[::2])
    np.testing.assert_array_equal(lazy[1:3], eager[1:3])
    np.testing.assert_array_equal(lazy[2], eager[2])
    np.testing.assert_array_equal(np.asarray(lazy), eager)
    import pickle

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy))[[1]], eager[[1]])


def test_lazy_loader_raises_what_the_eager_one_raises(tmp_path):
    good = [write(tmp_path / f"{i}.png", np.zeros((6, 6), dtype=np.uint8)) for i in range(3)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    loader = ImageLoader(lazy=True).fit(good)
    images = loader.transform([*good, broken])
    with pytest.raises(ValueError, match=r"broken.png.*cannot be read as an image"):
        images[[0, 3]]
    with pytest.raises(ValueError, match=r"broken.png.*cannot be read as an image"):
        ImageLoader().fit(good).transform([*good, broken])


@pytest.mark.parametrize("resize", ["stretch", "crop", "pad"])
def test_resize_policies_on_the_bundled_photos(resize):
    photos = load_sample_images()  # two 427x640 RGB photos shipped with scikit-learn
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    paths = [write(folder / f"{i}.jpg", image) for i, image in enumerate(photos.images)]
    images = ImageLoader(size=32, resize=resize).fit_transform(paths)
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    if resize == "pad":  # 427x640 fit into 32x32: black bands above and below
        assert images[:, :, 0].max() == 0 and images[:, :, 16].max() > 0


def test_bad_paths_are_value_errors_naming_the_file(tmp_path, gray):
    good = write(tmp_path / "ok.png", gray)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    loader = ImageLoader().fit([good])
    with pytest.raises(ValueError, match=r"broken\.png.*cannot be read"):
        loader.transform([good, str(tmp_path / "broken.png")])
    with pytest.raises(ValueError, match=r"missing\.png.*does not exist"):
        loader.transform([str(tmp_path / "missing.png")])
    with pytest.raises(TypeError, match=r"a single path.*\[path\]"):
        loader.transform(good)
    with pytest.raises(TypeError, match="file paths"):
        loader.transform([good, 3])


def test_a_pipeline_on_file_paths_in_a_parallel_grid_search(tmp_path):
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(48):  # bright square top-left (0) or bottom-right (1), on noise
        image = (rng.random((12, 12)) * 60).astype(np.uint8)
        label = i % 2
        image[(slice(0, 6) if label == 0 else slice(6, 12)),
              (slice(0, 6) if label == 0 else slice(6, 12))] = 230
        paths.append(write(tmp_path / f"{i}.png", image))
        labels.append(["top-left", "bottom-right"][label])
    pipe = make_pipeline(ImageLoader(size=(8, 8)), ChannelStandardizer(),
                         CNNClassifier(max_iter=5, random_state=0))
    search = GridSearchCV(pipe, {"cnnclassifier__filters": [(4, 8), (8, 16)]}, cv=2,
                          n_jobs=2, error_score="raise").fit(paths[:40], labels[:40])
    assert search.best_score_ > 0.9
    assert set(search.predict(paths[40:])) <= {"top-left", "bottom-right"}
    assert search.score(paths[40:], labels[40:]) > 0.8


def test_channel_standardizer_is_per_channel_and_inverts():
    rng = np.random.default_rng(0)
    X = np.stack([rng.normal(5, 2, (20, 6, 6)), rng.normal(-1, 0.5, (20, 6, 6)),
                  rng.normal(0, 1, (20, 6, 6))], axis=-1)
    scaler = ChannelStandardizer().fit(X)  # channels-last RGB-like input
    np.testing.assert_allclose(scaler.mean_, [5, -1, 0], atol=0.2)
    np.testing.assert_allclose(scaler.scale_, [2, 0.5, 1], rtol=0.1)
    Z = scaler.transform(X)
    assert Z.shape == (20, 3, 6, 6) and Z.dtype == np.float64
    np.testing.assert_allclose(Z.mean(axis=(0, 2, 3)), 0, atol=1e-9)
    np.testing.assert_allclose(Z.std(axis=(0, 2, 3)), 1, atol=1e-9)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X.transpose(0, 3, 1, 2))
    constant = ChannelStandardizer().fit(np.ones((3, 1, 2, 2), dtype=np.float32))
    np.testing.assert_array_equal(constant.transform(np.ones((1, 1, 2, 2))), 0.0)
    with pytest.raises(ValueError, match=r"X has 36 features, but ChannelStandardizer is "
                                         r"expecting 108"):
        scaler.transform(np.zeros((1, 1, 6, 6)))


def test_resize_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 3, 7, 9)).astype(np.float32)
    for size in [(14, 18), (5, 4), (7, 9)]:
        expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=size,
                                                   mode="bilinear", align_corners=False)
        np.testing.assert_allclose(resize_images(x, size), expected.numpy(), atol=1e-5)
    assert Resize(size=(4, 6)).fit_transform(x).shape == (2, 3, 4, 6)


def test_bridges_to_two_dimensional_steps_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).random((80, 1, 8, 8))
    flat = ImagesToFlat().fit(X)
    np.testing.assert_array_equal(flat.inverse_transform(flat.transform(X)), X)
    frame = ImagesToFlat().set_output(transform="pandas").fit_transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.columns[9] == "c0_y1_x1"
    pipe = make_pipeline(ImagesToFlat(), StandardScaler(), FlatToImages((1, 8, 8)))
    expected = StandardScaler().fit_transform(X.reshape(80, 64)).reshape(80, 1, 8, 8)
    np.testing.assert_allclose(pipe.fit_transform(X), expected)
    assert make_pipeline(ImagesToFlat(), PCA(n_components=5)).fit_transform(X).shape == (80, 5)
    with pytest.raises(ValueError, match="features per sample"):
        FlatToImages((1, 8, 8)).fit(np.zeros((3, 60)))
    with pytest.raises(ValueError, match="X has 60 features, but FlatToImages is expecting 64"):
        FlatToImages().fit(np.zeros((3, 64))).transform(np.zeros((3, 60)))


@pytest.mark.parametrize("transformer", [ImageLoader(size=8), ChannelStandardizer(),
                                         Resize(4), ImagesToFlat(), FlatToImages((1, 4, 4))])
def test_transformers_clone_and_pickle(transformer, tmp_path, gray):
    copy = clone(transformer)
    assert copy.get_params() == transformer.get_params()
    if isinstance(transformer, ImageLoader):
        data = [write(tmp_path / "g.png", gray)]
    elif isinstance(transformer, FlatToImages):  # rows of 4x4 images
        data = np.random.default_rng(0).random((3, 16))
    else:
        data = np.random.default_rng(0).random((3, 1, 4, 4))
    fitted = copy.fit(data)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(data), fitted.transform(data))


@parametrize_with_checks([ChannelStandardizer(), Resize(4), ImagesToFlat(), FlatToImages()])
def test_image_transformers_pass_scikit_learns_checks(estimator, check):
    check(estimator)


# -- every Pillow mode read at its true range ---------------------------------------

def _mode_cases():
    """(name, Pillow image, file suffix, the values read_image must return)."""
    from PIL import Image

    ramp8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ramp16 = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    ramp32 = np.linspace(0, 2**31 - 1, 256).astype(np.int32).reshape(16, 16)
    unit = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64) / 255
    return [
        ("1", Image.fromarray(ramp8 > 127), "png", (ramp8 > 127).astype(float)),
        ("L", Image.fromarray(ramp8), "png", ramp8 / 255),
        ("LA", Image.fromarray(np.dstack([ramp8, np.full_like(ramp8, 255)])), "png",
         ramp8 / 255),
        ("P", Image.fromarray(ramp8).convert("P"), "png", None),
        ("RGB", Image.fromarray(rgb), "png", gray),
        ("RGBA", Image.fromarray(np.dstack([rgb, np.full((16, 16), 255, np.uint8)])), "png",
         gray),
        ("CMYK", Image.fromarray(rgb).convert("CMYK"), "tiff", None),
        ("YCbCr", Image.fromarray(rgb).convert("YCbCr"), "jpg", None),
        ("I;16", Image.fromarray(ramp16), "png", ramp16 / 65535),
        ("I", Image.fromarray(ramp32), "tiff", ramp32 / (2**31 - 1)),
        ("F", Image.fromarray(unit), "tiff", unit),
    ]


@pytest.mark.parametrize("case", range(11))
def test_every_pillow_mode_reads_at_its_true_range(case, tmp_path):
    """Each mode written with known values comes back mapped to [0, 1] by its bit
    depth, to 1/255 or better (a 16-bit PNG was clipped to 8 bits, a float TIFF read
    as zeros)."""
    _, image, suffix, expected = _mode_cases()[case]
    path = tmp_path / f"image.{suffix}"
    image.save(path)
    from PIL import Image

    gray = read_image(path, mode="L")[0]
    if expected is None:  # lossy or palette modes: Pillow's own 8-bit conversion
        with Image.open(path) as opened:
            expected = np.asarray(opened.convert("L"), dtype=np.float64) / 255
    np.testing.assert_allclose(gray, expected, atol=1 / 255 / 2)
    assert 0.0 <= gray.min() and gray.max() <= 1.0
    rgb = read_image(path, mode="RGB")
    assert rgb.shape == (3, 16, 16) and rgb.dtype == np.float32


def test_wide_modes_resize_in_float_and_refuse_what_has_no_range(tmp_path):
    from PIL import Image

    ramp16 = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    Image.fromarray(ramp16).save(tmp_path / "wide.png")
    small = read_image(tmp_path / "wide.png", mode="RGBA", size=(8, 8))
    assert small.shape == (4, 8, 8) and (small[3] == 1).all()
    assert 0.0 < small[0].max() <= 1.0 and small[0, 0, 0] < 0.1  # not clipped to 1
    Image.fromarray(np.full((4, 4), -5, np.int32)).save(tmp_path / "negative.tiff")
    with pytest.raises(ValueError, match="negative values"):
        read_image(tmp_path / "negative.tiff")
    Image.fromarray(np.full((4, 4), np.nan, np.float32)).save(tmp_path / "nan.tiff")
    with pytest.raises(ValueError, match="NaN"):
        read_image(tmp_path / "nan.tiff")
