"""The architecture zoo on both backends: shapes, learning, customization, grid search."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_cnn import CNNClassifier, list_architectures, summary
from sklearn_cnn.architectures import architecture_parameters, build_architecture
from sklearn_cnn.backends import BACKENDS
from sklearn_cnn.layers import BatchNorm, Conv2d, Dropout, LeakyReLU, Tanh

ARCHS = list_architectures()
RESNETS = ("resnet18", "resnet20", "resnet34")


def test_the_canon_is_registered():
    assert set(ARCHS) >= {"lenet", "simple", "alexnet", "vgg11", "vgg16", "resnet18",
                          "resnet34", "resnet20"}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)], ids=str)
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_and_backend_predicts_on_any_image_size(arch, shape, backend):
    if backend == "torch":
        pytest.importorskip("skorch")
    rng = np.random.default_rng(0)
    X, y = rng.random((14, *shape), dtype=np.float32), np.arange(14) % 7
    clf = CNNClassifier(arch, backend=backend, width=0.25, max_iter=1, random_state=0)
    proba = clf.fit(X, y).predict_proba(X[:5])
    assert proba.shape == (5, 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_can_learn_32_samples(arch, backend, digits):
    """Narrowed by width=0.25, each network fits 32 digits: the training loss goes to
    ~0 (dropout off). VGG is trained with BatchNorm: without it the 16-layer plain
    network does not get started in 60 epochs at this learning rate."""
    if backend == "torch":
        pytest.importorskip("skorch")
    X, y = digits[0][:32], digits[2][:32]
    extra = {"dropout": 0.0} if arch not in RESNETS else {}
    if arch.startswith("vgg"):
        extra["batch_norm"] = True
    clf = CNNClassifier(arch, backend=backend, width=0.25, max_iter=60, batch_size=32,
                        alpha=0.0, n_iter_no_change=60, random_state=0, learning_rate="constant",
                        learning_rate_init=0.003, augment=None, label_smoothing=0.0,
                        **extra).fit(X, y)
    assert clf.loss_curve_[-1] < 0.05
    assert clf.score(X, y) == 1.0


def test_parameters_reshape_the_network():
    base = summary("lenet", (1, 28, 28), n_classes=10)
    wide = summary("lenet", (1, 28, 28), n_classes=10, filters=(16, 32))
    assert wide.rows[0].output_shape == (16, 24, 24) and wide.total_params > base.total_params
    specs, _ = build_architecture("lenet", (1, 28, 28), 10, activation="tanh", pooling="avg",
                                  batch_norm=True, dropout=0.25, hidden_units=(50,),
                                  kernel_size=3)
    names = [type(s).__name__ for s in specs]
    assert names.count("Tanh") == 3 and names.count("AvgPool2d") == 2
    assert names.count("BatchNorm") == 2 and names.count("Dropout") == 1
    assert specs[0] == Conv2d(6, 3, bias=False)  # no bias before BatchNorm
    half = summary("resnet20", (3, 32, 32), width=0.5)
    assert half.rows[0].output_shape == (8, 32, 32)
    leaky = build_architecture("vgg11", (3, 32, 32), 10, activation="leaky_relu")[0]
    assert any(isinstance(s, LeakyReLU) for s in leaky)
    assert any(isinstance(s, Tanh) for s in build_architecture("alexnet", (1, 28, 28), 3,
                                                               activation="tanh")[0])


def test_resnet_blocks_and_projection_shortcuts():
    specs, _ = build_architecture("resnet18", (3, 32, 32), n_classes=10)
    blocks = [s for s in specs if type(s).__name__ == "Residual"]
    assert len(blocks) == 8
    projections = [b for b in blocks if b.shortcut]
    assert len(projections) == 3  # where 64->128, 128->256, 256->512 halve the map
    assert all(isinstance(b.shortcut[-1], BatchNorm) for b in projections)
    assert len([s for s in build_architecture("resnet34", (3, 32, 32), 10)[0]
                if type(s).__name__ == "Residual"]) == 16
    assert summary("resnet20", (3, 32, 32), n_classes=10).total_params == 272_474


def test_alexnet_and_vgg_shapes():
    alex = summary("alexnet", (3, 32, 32), n_classes=10)
    assert [r.output_shape for r in alex.rows if r.layer.startswith("MaxPool")] == \
        [(64, 15, 15), (192, 7, 7), (256, 3, 3)]
    assert sum(isinstance(s, Dropout) for s in build_architecture("alexnet", (3, 32, 32),
                                                                   10)[0]) == 2
    vgg16 = build_architecture("vgg16", (3, 32, 32), 10)[0]
    assert sum(isinstance(s, Conv2d) for s in vgg16) == 13
    assert summary("vgg11", (3, 32, 32)).rows[-5].output_shape == (512,)  # 1x1 maps left


def test_parameters_that_do_not_apply_are_clear_errors():
    X, y = np.zeros((4, 8, 8)), [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"arch='resnet20' does not take hidden_units.*filters"):
        CNNClassifier("resnet20", hidden_units=(10,)).fit(X, y)
    with pytest.raises(ValueError, match="does not take kernel_size"):
        CNNClassifier("vgg11", kernel_size=5).fit(X, y)
    with pytest.raises(ValueError, match=r"filters needs 5 values \(one per stage\)"):
        CNNClassifier("alexnet", filters=(8, 8)).fit(X, y)
    with pytest.raises(ValueError, match="named architectures only"):
        CNNClassifier([Conv2d(2, 3)], filters=(3,)).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        CNNClassifier(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="positive ints"):
        CNNClassifier(filters=(6, 0)).fit(X, y)
    assert architecture_parameters("resnet20") == ["filters", "activation", "dropout",
                                                   "batch_norm", "width", "imagenet"]


def test_grid_search_over_filters_in_a_pipeline_with_two_jobs(digits):
    X_train, X_test, y_train, y_test = digits
    flatten = FunctionTransformer(np.reshape, kw_args={"shape": (-1, 64)})
    pipe = make_pipeline(flatten, CNNClassifier("lenet", max_iter=8, random_state=0))
    search = GridSearchCV(pipe, {"cnnclassifier__filters": [(6, 16), (16, 32)]}, cv=2,
                          n_jobs=2).fit(X_train, y_train)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.best_params_["cnnclassifier__filters"] in [(6, 16), (16, 32)]
    assert search.score(X_test, y_test) > 0.9
