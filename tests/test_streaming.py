"""Images read batch by batch (_streaming.py): memory-mapped arrays, array-likes and
lazy image files train and predict exactly as the same images in memory, read only
a batch at a time, with the same errors and the same fit transactions."""

import threading

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline

from sklearn_cnn import CNNClassifier, CNNRegressor, _streaming
from sklearn_cnn._streaming import ImageStream, is_streamed
from sklearn_cnn.augment import flip_left_right


class Dataset:
    """An HDF5-like dataset: ``len``, ``shape``, ``dtype`` and indexing by a slice or
    an increasing integer array (as h5py requires), never converted whole; it
    records how many rows each read returned."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.reads = []
        self.threads = set()

    def __len__(self):
        return len(self._array)

    def __getitem__(self, key):
        if not isinstance(key, slice):
            key = np.asarray(key)
            assert key.ndim == 1 and (np.diff(key) > 0).all(), "h5py wants increasing rows"
        rows = self._array[key]
        self.reads.append(len(rows))
        self.threads.add(threading.current_thread().name.split("_")[0])
        return rows.copy()

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole dataset was read at once")


@pytest.fixture(scope="module")
def pixels():
    """The digits as uint8 (n, 8, 8) pixels 0-255, and their labels."""
    X, y = load_digits(return_X_y=True)
    return (X.reshape(-1, 8, 8) * 16).clip(0, 255).astype(np.uint8), y


@pytest.fixture
def memmap(pixels, tmp_path):
    path = tmp_path / "pixels.npy"
    np.save(path, pixels[0])
    return np.load(path, mmap_mode="r")


def test_what_is_streamed(pixels, memmap, monkeypatch):
    X, _ = pixels
    assert is_streamed(memmap) and is_streamed(Dataset(X))
    assert not is_streamed(X) and not is_streamed(X.tolist())
    assert not is_streamed(Dataset(X.astype(object)))  # not numbers: the usual checks
    monkeypatch.setattr(_streaming, "STREAM_ABOVE", X.size)  # a float copy too large
    assert is_streamed(X) and not is_streamed(X.astype(np.float32))


def test_memmap_fit_and_predictions_equal_the_in_memory_ones(pixels, memmap, backend,
                                                             monkeypatch):
    monkeypatch.setattr(_streaming, "RELEASE_BYTES", 1000)  # pages handed back often
    X, y = pixels
    params = dict(arch="lenet", max_iter=2, random_state=0, backend=backend,
                  early_stopping=True, test_time_augment="flip")
    in_memory = CNNClassifier(**params).fit(X, y)
    streamed = CNNClassifier(**params).fit(memmap, y)
    for key, weight in in_memory.get_weights().items():
        np.testing.assert_array_equal(streamed.get_weights()[key], weight)
    assert streamed.validation_scores_ == in_memory.validation_scores_
    np.testing.assert_array_equal(streamed.predict_proba(memmap), in_memory.predict_proba(X))
    in_memory.set_params(test_time_augment="shift")  # the moved copies, batch by batch
    np.testing.assert_array_equal(in_memory.predict_proba(memmap), in_memory.predict_proba(X))
    np.testing.assert_array_equal(in_memory.transform(memmap), in_memory.transform(X))
    assert in_memory.score(memmap, y) == in_memory.score(X, y)


def test_an_array_like_is_read_a_batch_at_a_time(pixels):
    X, y = pixels
    data = Dataset(X)
    clf = CNNClassifier("lenet", max_iter=1, batch_size=50, random_state=0).fit(data, y)
    assert max(data.reads) <= max(50, _streaming.FIRST_ROWS)
    assert sum(data.reads) < 2 * len(X)  # one epoch, the first rows and no more
    data.reads.clear()
    proba = clf.predict_proba(data)
    assert proba.shape == (len(X), 10) and max(data.reads) < len(X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-6)


def test_the_regressor_and_partial_fit_stream_too(pixels, memmap):
    X, y = pixels
    target = y.astype(float)
    in_memory = CNNRegressor("lenet", max_iter=2, random_state=0).fit(X, target)
    streamed = CNNRegressor("lenet", max_iter=2, random_state=0).fit(memmap, target)
    np.testing.assert_array_equal(streamed.predict(memmap), in_memory.predict(X))
    clf = CNNClassifier("lenet", random_state=0)
    clf.partial_fit(memmap, y, classes=np.arange(10)).partial_fit(memmap, y)
    assert clf.n_iter_ == 2 and clf.score(memmap, y) > 0.5


def test_a_nan_half_way_raises_and_leaves_the_estimator_as_it_was(pixels):
    X, y = pixels
    floats = X.astype(np.float32) / 255
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(floats, y)
    before = clf.get_weights()
    broken = floats.copy()
    broken[1500, 3, 3] = np.nan  # far past the rows read to check the layout
    for call in (lambda: clf.fit(Dataset(broken), y),
                 lambda: clf.partial_fit(Dataset(broken), y)):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            call()
        for key, weight in before.items():
            np.testing.assert_array_equal(clf.get_weights()[key], weight)
        assert clf.n_iter_ == 1
    fresh = CNNClassifier("lenet", max_iter=1)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fresh.fit(Dataset(broken), y)
    assert not hasattr(fresh, "network_")
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(Dataset(broken))


def test_wrong_layouts_are_refused_before_training(pixels):
    X, y = pixels
    with pytest.raises(ValueError, match="X has 2 features per sample"):
        ImageStream(Dataset(np.zeros((10, 2), dtype=np.uint8)), input_shape=(1, 8, 8))
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match=r"images of shape \(1, 4, 4\)"):
        clf.predict(Dataset(np.zeros((10, 4, 4), dtype=np.uint8)))
    with pytest.raises(ValueError, match="0 sample"):
        CNNClassifier().fit(Dataset(np.zeros((0, 8, 8), dtype=np.uint8)), [])


def test_an_image_stream_indexes_like_an_array(pixels):
    X, _ = pixels
    images = ImageStream(Dataset(X[:20]))
    expected = X[:20, None].astype(np.float32) / 255
    assert images.shape == (20, 1, 8, 8) and len(images) == 20 and images.ndim == 4
    np.testing.assert_array_equal(images[[7, 2, 7]], expected[[7, 2, 7]])
    np.testing.assert_array_equal(images[3], expected[3])
    np.testing.assert_array_equal(images[::-3], expected[::-3])
    np.testing.assert_array_equal(images[np.arange(20) > 15], expected[16:])
    subset = images.take([5, 1, 9])
    np.testing.assert_array_equal(subset[1:], expected[[1, 9]])
    mirrored = subset.mapped(flip_left_right)  # a view: read, then mirrored
    np.testing.assert_array_equal(mirrored[0], expected[5][..., ::-1])
    np.testing.assert_array_equal(mirrored.mapped(flip_left_right)[0], expected[5])
    np.testing.assert_array_equal(np.asarray(subset), expected[[5, 1, 9]])
    with pytest.raises(IndexError):
        images[[20]]
    # an empty selection (a process's share of a tiny last batch) reads nothing
    assert images[[]].shape == (0, 1, 8, 8) and images[5:5].dtype == np.float32
    import pickle

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(subset))[0], expected[5])


def test_inspection_reads_streams_too(pixels, memmap):
    from sklearn_cnn.inspection import grad_cam, occlusion, saliency

    X, y = pixels
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, y)
    for explain in (saliency, grad_cam, occlusion,
                    lambda c, x: saliency(c, x, times_input=True, smooth=2,
                                          random_state=0)):
        np.testing.assert_allclose(explain(clf, memmap[:40]), explain(clf, X[:40]),
                                   atol=1e-6)


def test_lazy_image_files_through_pipeline_search_and_cross_validation(tmp_path, pixels):
    Image = pytest.importorskip("PIL.Image")
    from sklearn_cnn.preprocessing import ImageLoader, LazyImages

    X, y = pixels[0][:120], pixels[1][:120] % 2
    paths = []
    for i, image in enumerate(X):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    eager = make_pipeline(ImageLoader(), CNNClassifier("lenet", max_iter=2, random_state=0))
    lazy = make_pipeline(ImageLoader(lazy=True),
                         CNNClassifier("lenet", max_iter=2, random_state=0))
    eager.fit(paths, y)
    lazy.fit(paths, y)
    assert isinstance(lazy[0].transform(paths), LazyImages)
    np.testing.assert_allclose(lazy.predict_proba(paths), eager.predict_proba(paths),
                               atol=1e-6)
    search = GridSearchCV(lazy, {"cnnclassifier__filters": [(4, 8), (6, 16)]}, cv=2)
    assert search.fit(paths, y).best_score_ > 0.5
    scores = cross_validate(lazy, paths, y, cv=2)["test_score"]
    assert scores.shape == (2,) and scores.min() > 0.5


def test_the_next_batch_is_read_ahead_where_that_pays(pixels, backend):
    """On a worker thread with the NumPy backend; between steps with the torch
    backend on the CPU, whose threads take every core."""
    X, y = pixels
    data = Dataset(X[:300])
    CNNClassifier("lenet", max_iter=1, batch_size=50, backend=backend).fit(data, y[:300])
    ahead = "sklearn-cnn-prefetch" in data.threads
    assert ahead == (backend == "numpy")


def test_a_dask_array_and_channels_last_or_flat_memmaps_stream(pixels, tmp_path):
    da = pytest.importorskip("dask.array")
    X, y = pixels
    lazy = da.from_array(X, chunks=(200, 8, 8))
    assert is_streamed(lazy)
    in_memory = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, y)
    streamed = CNNClassifier("lenet", max_iter=1, random_state=0).fit(lazy, y)
    np.testing.assert_array_equal(streamed.predict_proba(lazy), in_memory.predict_proba(X))
    np.save(tmp_path / "rgb.npy", np.repeat(X[..., None], 3, axis=3))  # (n, H, W, 3)
    rgb = np.load(tmp_path / "rgb.npy", mmap_mode="r")
    assert CNNClassifier("lenet", max_iter=1).fit(rgb, y).input_shape_ == (3, 8, 8)
    np.save(tmp_path / "flat.npy", X.reshape(len(X), -1) / 255.0)  # float64 rows
    flat = np.load(tmp_path / "flat.npy", mmap_mode="r")
    clf = CNNClassifier("lenet", max_iter=1).fit(flat, y)
    assert clf.network_.dtype == np.float64 and clf.input_shape_ == (1, 8, 8)
