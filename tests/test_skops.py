"""skops: both estimators, both backends and this package's transformers dump and load
safely with the documented list of trusted types."""

import numpy as np
import pytest

sio = pytest.importorskip("skops.io")

from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

from sklearn_cnn import CNNClassifier, CNNRegressor  # noqa: E402
from sklearn_cnn.datasets import load_digits_images  # noqa: E402
from sklearn_cnn.persistence import skops_trusted_types  # noqa: E402
from sklearn_cnn.preprocessing import ChannelStandardizer, FlatToImages, ImagesToFlat  # noqa: E402

MODELS = {
    "classifier": lambda backend: CNNClassifier("lenet", backend=backend, dropout=0.2,
                                                batch_norm=True, max_iter=1, random_state=0),
    "regressor": lambda backend: CNNRegressor("resnet20", backend=backend, max_iter=1,
                                              random_state=0),
    "pipeline": lambda backend: make_pipeline(
        ChannelStandardizer(), ImagesToFlat(), MinMaxScaler(), FlatToImages(input_shape=(1, 8, 8)),
        CNNClassifier(backend=backend, max_iter=1, random_state=0)),
}


@pytest.mark.parametrize("kind", list(MODELS))
def test_dump_and_load_with_the_trusted_types(kind, backend, tmp_path):
    X, y = load_digits_images(return_X_y=True)
    model = MODELS[kind](backend).fit(X[:150], y[:150].astype(float) if kind == "regressor"
                                      else y[:150])
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    assert set(sio.get_untrusted_types(file=path)) <= set(skops_trusted_types())
    restored = sio.load(path, trusted=skops_trusted_types())
    method = "predict" if kind == "regressor" else "predict_proba"
    np.testing.assert_array_equal(getattr(restored, method)(X), getattr(model, method)(X))
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)  # nothing is trusted without being told


def test_torch_model_goes_on_training_after_a_skops_round_trip(tmp_path):
    pytest.importorskip("skorch")
    X, y = load_digits_images(return_X_y=True)
    model = CNNClassifier("lenet", backend="torch", max_iter=2, random_state=0)
    model.fit(X[:150], y[:150])
    sio.dump(model, tmp_path / "m.skops")
    restored = sio.load(tmp_path / "m.skops", trusted=skops_trusted_types())
    assert len(restored.model_.history) == 2
    for clf in (model, restored):  # the optimizer state came back too
        clf.partial_fit(X[150:300], y[150:300])
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
