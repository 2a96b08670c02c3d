"""ONNX export through skl2onnx: onnxruntime predicts what the estimator predicts."""

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from skl2onnx import to_onnx  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402

import sklearn_cnn.onnx  # noqa: E402, F401  (registers the converters)
from sklearn_cnn import CNNClassifier, CNNRegressor, list_architectures  # noqa: E402
from sklearn_cnn import layers as S  # noqa: E402
from sklearn_cnn.architectures import architecture_parameters  # noqa: E402
from sklearn_cnn.datasets import load_digits_images  # noqa: E402
from sklearn_cnn.onnx import OPSET  # noqa: E402
from sklearn_cnn.preprocessing import (  # noqa: E402
    ChannelStandardizer,
    FlatToImages,
    ImagesToFlat,
    Resize,
)


def session(model, sample, **options):
    onx = to_onnx(model, sample[:1], target_opset=OPSET, **options)
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def run(model, sample, X, **options):
    sess = session(model, sample, **options)
    return sess.run(None, {sess.get_inputs()[0].name: X})


def assert_same_predictions(model, X, sample=None, batches=(1, 7)):
    """Labels and probabilities of the ONNX graph against the estimator's, for
    several batch sizes through one graph (the batch axis is dynamic)."""
    sess = session(model, X if sample is None else sample, options={"zipmap": False})
    for n in batches:
        label, proba = sess.run(None, {sess.get_inputs()[0].name: X[:n]})
        np.testing.assert_allclose(proba, model.predict_proba(X[:n]), atol=1e-5)
        np.testing.assert_array_equal(label, model.predict(X[:n]))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((12, 3, 16, 16), dtype=np.float32), np.arange(12) % 3


@pytest.mark.parametrize("arch", list_architectures())
def test_every_architecture_of_the_zoo(arch, images, backend):
    X, y = images
    narrow = {"width": 0.25} if "width" in architecture_parameters(arch) else {}
    clf = CNNClassifier(arch, backend=backend, max_iter=1, random_state=0, **narrow).fit(X, y)
    assert_same_predictions(clf, X)


EVERY_LAYER = [
    S.Conv2d(4, 3, padding="same"), S.BatchNorm(), S.LeakyReLU(0.1),
    S.MaxPool2d(3, stride=2, padding=1), S.Conv2d(6, (3, 2), stride=(1, 2), padding=(1, 0, 2, 1)),
    S.Tanh(), S.AvgPool2d(2, padding=1),
    S.Residual(body=(S.Conv2d(6, 3, padding=1), S.Sigmoid()), shortcut=()),
    S.Residual(body=(S.Conv2d(8, 1),), shortcut=(S.Conv2d(8, 1, bias=False),)),
    S.ReLU(), S.AdaptiveAvgPool2d((3, 2)), S.Flatten(), S.Dropout(0.3), S.Linear(10),
    S.BatchNorm(), S.ReLU(), S.Linear(3),
]


def test_spec_list_with_every_layer_type(images):
    X, y = images
    clf = CNNClassifier(EVERY_LAYER, max_iter=2, random_state=0).fit(X, y)
    assert_same_predictions(clf, X)
    pooled = [S.Conv2d(4, 3), S.ReLU(), S.GlobalAvgPool2d(), S.Linear(3)]
    assert_same_predictions(CNNClassifier(pooled, max_iter=1, random_state=0).fit(X, y), X)


def test_every_input_layout_and_dtype():
    X, y = load_digits_images(return_X_y=True)
    X, y = X[:200], y[:200]
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, y)
    for layout in (X, X[:, 0], X[:, 0, :, :, None], X.reshape(200, -1)):
        assert_same_predictions(clf, np.ascontiguousarray(layout))
    pixels = (X * 255).round().astype(np.uint8)  # scaled by 1/255, as the estimator does
    assert_same_predictions(clf, pixels)
    wide = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X.astype(np.float64), y)
    _, proba = run(wide, X.astype(np.float64), X[:5].astype(np.float64),
                       options={"zipmap": False})
    assert proba.dtype == np.float32  # onnxruntime convolves in float32 only
    np.testing.assert_allclose(proba, wide.predict_proba(X[:5].astype(np.float64)), atol=1e-5)


def test_labels_and_zipmap():
    X, y = load_digits_images(return_X_y=True)
    names = np.array(list("abcdefghij"))[y[:200]]
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], names)
    label, proba = run(clf, X, X[:4])  # zipmap: a list of {label: probability}
    np.testing.assert_array_equal(label, clf.predict(X[:4]))
    assert set(proba[0]) == set(clf.classes_)
    assert proba[0][label[0]] == pytest.approx(clf.predict_proba(X[:1]).max(), abs=1e-5)
    binary = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200] > 4)
    label, _ = run(binary, X, X[:6], options={"zipmap": False})
    np.testing.assert_array_equal(label.astype(bool), binary.predict(X[:6]))
    whole = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:200], y[:200] * 1.0)
    label, _ = run(whole, X, X[:6], options={"zipmap": False})  # 3.0 -> 3
    np.testing.assert_array_equal(label, whole.predict(X[:6]))


def test_whole_pipelines_in_one_graph():
    X, y = load_digits_images(return_X_y=True)
    X, y = X[:200], y[:200]
    flat = X.reshape(200, -1)
    for steps in ([MinMaxScaler()], [StandardScaler()]):
        pipe = make_pipeline(*steps, CNNClassifier("lenet", max_iter=1, random_state=0))
        assert_same_predictions(pipe.fit(flat, y), flat)
    images = make_pipeline(ChannelStandardizer(), ImagesToFlat(), MinMaxScaler(),
                           FlatToImages(input_shape=(1, 8, 8)),
                           CNNClassifier("lenet", max_iter=1, random_state=0)).fit(X, y)
    assert_same_predictions(images, X)
    for size in (12, (6, 10)):  # up and down, bilinear both ways
        resized = make_pipeline(Resize(size), ChannelStandardizer(),
                                CNNClassifier("lenet", max_iter=1, random_state=0)).fit(X, y)
        assert_same_predictions(resized, X)


def test_regressor(images):
    X, _ = images
    Y = np.c_[X.mean(axis=(1, 2, 3)) * 100, X[:, 0, :4].mean(axis=(1, 2))]
    reg = CNNRegressor("lenet", max_iter=2, random_state=0).fit(X, Y)
    (out,) = run(reg, X, X)
    np.testing.assert_allclose(out, reg.predict(X), rtol=1e-5, atol=1e-4)
    one = CNNRegressor("lenet", max_iter=2, random_state=0).fit(X, Y[:, 0])
    (out,) = run(one, X, X[:3])
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out[:, 0], one.predict(X[:3]), rtol=1e-5, atol=1e-4)


def test_test_time_flip_is_in_the_graph(images):
    X, y = images
    clf = CNNClassifier("lenet", max_iter=2, random_state=0, test_time_augment="flip").fit(X, y)
    assert_same_predictions(clf, X)
    Y = X.mean(axis=(1, 2, 3)) * 10
    reg = CNNRegressor("lenet", max_iter=2, random_state=0, test_time_augment="flip").fit(X, Y)
    (out,) = run(reg, X, X[:5])
    np.testing.assert_allclose(out[:, 0], reg.predict(X[:5]), rtol=1e-5, atol=1e-4)


def test_test_time_shift_is_in_the_graph():
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 8, 8)).astype(np.float32)
    clf = CNNClassifier(max_iter=2, random_state=0).fit(X, np.arange(40) % 3)
    assert clf.test_time_augment == "auto"  # the shifts, on 8x8 images
    assert_same_predictions(clf, X)
    reg = CNNRegressor("lenet", max_iter=2, random_state=0, test_time_augment="shift").fit(
        X, X.mean(axis=(1, 2, 3)))
    (out,) = run(reg, X, X[:5])
    np.testing.assert_allclose(out[:, 0], reg.predict(X[:5]), rtol=1e-5, atol=1e-5)


def test_what_cannot_be_exported(images):
    X, y = images
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"samples of shape \(3, 16, 17\), but the model was "
                                         r"fitted on images of shape \(3, 16, 16\)"):
        to_onnx(clf, np.zeros((1, 3, 16, 17), dtype=np.float32), target_opset=OPSET)
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self, n_classes):
            super().__init__()
            self.head = torch.nn.Linear(768, n_classes)

        def forward(self, x):
            return self.head(x.flatten(1))

    custom = CNNClassifier(Tiny, backend="torch", max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="ONNX export needs an architecture made of"):
        to_onnx(custom, X[:1], target_opset=OPSET)


def test_unfitted_estimators_and_samples_of_another_size_are_refused_at_export():
    from sklearn.exceptions import NotFittedError

    from sklearn_cnn import CNNRegressor

    sample = np.zeros((1, 8, 8), dtype=np.float32)
    for estimator in (CNNClassifier("lenet"), CNNRegressor("lenet")):
        with pytest.raises(NotFittedError):
            to_onnx(estimator, sample)
    rng = np.random.default_rng(0)
    X = rng.random((40, 8, 8), dtype=np.float32)
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, np.arange(40) % 2)
    for wrong in (np.zeros((1, 7, 7), np.float32), np.zeros((1, 49), np.float32),
                  np.zeros((1, 2, 8, 8), np.float32)):
        with pytest.raises(ValueError, match=r"fitted on images of shape \(1, 8, 8\)"):
            to_onnx(clf, wrong)
    for right in (X[:1], X[:1, None], X[:1].reshape(1, -1)):
        to_onnx(clf, right)  # every layout of the fitted size exports


def test_the_packages_to_onnx_registers_first_and_uses_the_tested_opset(images):
    """sklearn_cnn.onnx.to_onnx converts even when skl2onnx's registry has lost the
    converters, with the opset they are tested with."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    from sklearn_cnn.onnx import to_onnx as cnn_to_onnx

    X, y = images
    clf = CNNClassifier("lenet", width=0.25, max_iter=1, random_state=0).fit(X, y)
    sklearn_operator_name_map.pop(CNNClassifier)  # as if never registered
    graph = cnn_to_onnx(clf, X[:1], options={"zipmap": False})
    assert CNNClassifier in sklearn_operator_name_map
    assert {opset.domain: opset.version for opset in graph.opset_import}[""] == OPSET
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, {sess.get_inputs()[0].name: X})
    np.testing.assert_array_equal(label, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)
