"""How parameters become a network (_fitting.py): init_from, reused weights, freeze."""

import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from model_files import tiny_model
from recipes import lenet
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

from sklearn_cnn import CNNClassifier, CNNRegressor
from sklearn_cnn._fitting import (
    ARCH_PARAMS,
    StartingWeights,
    build_specs,
    frozen_layers,
    is_fitted_source,
    print_epoch,
    reusable_weights,
    source_weights,
    starting_weights,
)
from sklearn_cnn.architectures import architecture_parameters, build_architecture
from sklearn_cnn.layers import Conv2d, GlobalAvgPool2d


@pytest.fixture(scope="module")
def source(digits):
    """A fitted LeNet on 300 digits, the source the fine-tuning tests start from."""
    X, _, y, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return lenet(max_iter=3, random_state=0).fit(X[:300], y[:300])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "model.npz"
    tiny_model()[0].save(path)
    return path


# -- where the starting weights come from -------------------------------------------

def test_every_kind_of_init_from_is_resolved(source, model_file, tmp_path):
    frozen = FrozenEstimator(source)
    torchvision_file = tmp_path / "resnet18.pth"
    torchvision_file.write_bytes(b"\x80\x02 a torch state_dict, not a model file")
    cases = [(None, StartingWeights()), (source, StartingWeights(model=source)),
             (frozen, StartingWeights(model=frozen)),
             (model_file, StartingWeights(model=model_file)),
             (str(model_file), StartingWeights(model=str(model_file))),
             ("imagenet", StartingWeights(imagenet="hub")),
             (torchvision_file, StartingWeights(imagenet=torchvision_file)),
             (str(torchvision_file), StartingWeights(imagenet=str(torchvision_file)))]
    for init_from, expected in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # none of these is deprecated
            assert starting_weights(CNNClassifier(init_from=init_from)) == expected, init_from
    for missing in (tmp_path / "nowhere.npz", "model.pkl", str(tmp_path)):  # a folder too
        with pytest.raises(ValueError, match=r"init_from='.*' names no file; pass "
                                             r"'imagenet', a file written by save\(\)"):
            starting_weights(CNNClassifier(init_from=missing))


@pytest.mark.parametrize("old, new", [({"pretrained": True}, "init_from='imagenet'"),
                                      ({"weights": "PATH"}, "init_from='PATH'")])
def test_pretrained_and_weights_warn_naming_init_from(old, new, tmp_path):
    path = tmp_path / "resnet18.pth"
    old = {name: path if value == "PATH" else value for name, value in old.items()}
    with pytest.warns(FutureWarning, match=re.escape(new.replace("PATH", str(path)))):
        start = starting_weights(CNNClassifier(**old))
    assert start == StartingWeights(imagenet="hub" if "pretrained" in old else path)


def test_fit_warns_before_it_builds_anything(digits):
    X, _, y, _ = digits
    clf = CNNClassifier("lenet", pretrained=True, max_iter=1)
    with pytest.warns(FutureWarning, match="pretrained=True is deprecated"), \
            pytest.raises(ValueError, match="pretrained weights exist for arch in"):
        clf.fit(X[:20], y[:20])
    assert not hasattr(clf, "network_")


def test_source_weights_of_each_kind(source, model_file, tmp_path):
    expected = source.get_weights()
    for kind in (source, FrozenEstimator(source)):
        weights = source_weights(kind)
        for key, value in expected.items():
            np.testing.assert_array_equal(weights[key], value, err_msg=key)
    file_weights = source_weights(model_file)
    assert set(file_weights) == set(tiny_model()[0].get_weights())
    (tmp_path / "broken.npz").write_bytes(b"PK not a model")
    with pytest.raises(ValueError, match=r"init_from='.*broken\.npz' is not a model file "
                                         r"written by CNNClassifier\.save"):
        source_weights(tmp_path / "broken.npz")
    with pytest.raises(NotFittedError, match=r"init_from=CNNRegressor\(\.\.\.\) is not "
                                             r"fitted; fit it first"):
        source_weights(CNNRegressor())


def test_is_fitted_source(source):
    assert is_fitted_source(source) and is_fitted_source(FrozenEstimator(source))
    for other in (None, "model.npz", Path("model.npz"), CNNClassifier(),
                  FrozenEstimator(CNNClassifier()), 3):
        assert not is_fitted_source(other), other


# -- which weights are taken --------------------------------------------------------

def test_reusable_weights_take_a_layer_whole_or_not_at_all():
    fresh = {"0.weight": np.zeros((4, 1, 3, 3), np.float32), "0.bias": np.zeros(4, np.float32),
             "1.weight": np.zeros((2, 4), np.float32), "1.bias": np.zeros(2, np.float32),
             "2.body.0.weight": np.zeros(3, np.float32), "2.body.0.bias": np.zeros(3, np.float32),
             "2.body.0.running_mean": np.zeros(3, np.float32)}
    source = {"0.weight": np.ones((4, 1, 3, 3)), "0.bias": np.ones(4),       # fits: taken
              "1.weight": np.ones((3, 4)), "1.bias": np.ones(2),             # (3, 4): not
              "2.body.0.weight": np.ones(3), "2.body.0.bias": np.ones(3),    # no running
              "9.weight": np.ones(1)}                                        # mean: not
    taken = reusable_weights(source, fresh)
    assert sorted(taken) == ["0.bias", "0.weight"]
    assert all(value.dtype == np.float32 for value in taken.values())  # the network's
    np.testing.assert_array_equal(taken["0.weight"], 1.0)
    assert reusable_weights({}, fresh) == {}


def test_init_from_reuses_every_matching_layer_across_backends(backend, digits, source):
    X, _, y, _ = digits
    X, y = X[:300], y[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # fine-tune on a 2-class task: the convolutions and hidden layers carry over,
        # the output layer (10 -> 2 classes) starts fresh
        tuned = lenet(backend=backend, init_from=source, max_iter=1,
                      learning_rate_init=1e-9, random_state=1).fit(X, y >= 5)
    source_weights, tuned_weights = source.get_weights(), tuned.get_weights()
    for key in ("0.weight", "2.weight", "6.weight", "8.weight"):
        np.testing.assert_allclose(tuned_weights[key], source_weights[key], atol=1e-5)
    assert tuned_weights["10.weight"].shape == (2, 84)
    # a layer is reused whole or not at all: with 50 hidden units before it, the output
    # layer's (10, 50) weight cannot come over, so neither does its (10,) bias
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        narrower = lenet(backend=backend, init_from=source, hidden_units=(120, 50),
                         max_iter=1, learning_rate_init=1e-9, random_state=1).fit(X, y)
    np.testing.assert_allclose(narrower.get_weights()["6.weight"], source_weights["6.weight"],
                               atol=1e-5)
    np.testing.assert_allclose(narrower.get_weights()["10.bias"], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="init_from"):
        lenet(init_from="model.pkl").fit(X[:20], y[:20])


def test_init_from_inside_a_grid_search(digits, source, tmp_path):
    X, X_test, y, y_test = digits
    X, y = X[:300], y[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the fitted source itself (clone shares it), frozen, or as a file
        for init_from in (source, FrozenEstimator(source), str(tmp_path / "source.npz")):
            source.save(tmp_path / "source.npz")
            search = GridSearchCV(
                lenet(init_from=init_from, max_iter=1, learning_rate_init=1e-9),
                {"alpha": [0.0, 0.001]}, cv=2, error_score="raise").fit(X, y)
            # the tuned models start from the source's weights, so they score as it does
            assert search.best_estimator_.score(X_test, y_test) == pytest.approx(
                source.score(X_test, y_test), abs=0.01)
            assert search.best_estimator_.init_from is init_from  # shared, not copied
    with pytest.raises(NotFittedError, match=r"init_from=CNNClassifier.*not fitted"):
        lenet(init_from=lenet(), max_iter=1).fit(X[:50], y[:50])


# -- frozen layers ------------------------------------------------------------------

def test_frozen_layers_counts_the_leading_layers():
    specs, _ = build_architecture("lenet", (1, 28, 28), 10)
    assert [type(s).__name__ for s in specs[6:8]] == ["Flatten", "Linear"]
    assert frozen_layers(None, specs) == 0 and frozen_layers(None, None) == 0
    assert frozen_layers("features", specs) == 7  # every layer before the first Linear
    assert frozen_layers(3, specs) == 3
    with pytest.raises(ValueError, match=f"freeze={len(specs)} would freeze all "
                                         f"{len(specs)} layers; nothing would train"):
        frozen_layers(len(specs), specs)
    with pytest.raises(ValueError, match=r"not a custom torch\.nn\.Module"):
        frozen_layers(1, None)
    with pytest.raises(ValueError, match=r"freeze='features'.*no Linear layer"):
        frozen_layers("features", (Conv2d(4, 3), GlobalAvgPool2d()))


def test_freeze_trains_only_the_head(backend, digits, source):
    X, _, y, _ = digits
    X, y = X[:300], y[:300]
    tuned = lenet(backend=backend, init_from=source, freeze="features",
                  max_iter=3, random_state=1).fit(X, y % 3)
    before, after = source.get_weights(), tuned.get_weights()
    for key in ("0.weight", "0.bias", "2.weight"):  # convolutions: untouched
        np.testing.assert_allclose(after[key], before[key], atol=1e-6)
    assert not np.allclose(after["6.weight"], before["6.weight"])  # dense layers trained
    two = lenet(backend=backend, freeze=1, max_iter=2, random_state=0).fit(X[:200], y[:200])
    assert two.n_iter_ == 2
    with pytest.raises(ValueError, match="nothing would train"):
        lenet(backend=backend, freeze=50, max_iter=1).fit(X[:50], y[:50])


# -- the per-epoch report -----------------------------------------------------------

def test_print_epoch_writes_a_header_then_one_aligned_row_per_epoch(capsys):
    def record(loss, score, rate, seconds):
        return SimpleNamespace(loss=loss, validation_score=score, learning_rate=rate,
                               seconds=seconds)

    print_epoch(1, record(2.302585, 0.12345, 0.003, 1.5))
    print_epoch(2, record(0.5, 0.5, 1.5e-4, 12.25))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "epoch  train loss  valid score  learning rate  seconds",
        "    1      2.3026       0.1235          0.003     1.50",
        "    2      0.5000       0.5000        0.00015    12.25",
    ]
    assert len({len(line) for line in lines}) == 1  # the columns line up
    # without a validation split (no early stopping) the column is left out
    print_epoch(1, record(2.302585, None, 0.003, 1.5))
    print_epoch(2, record(0.5, None, 1.5e-4, 12.25))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "epoch  train loss  learning rate  seconds",
        "    1      2.3026          0.003     1.50",
        "    2      0.5000        0.00015    12.25",
    ]


@pytest.mark.parametrize("arch", ["resnet18", "resnet20", "vgg11", "alexnet"])
def test_an_arch_that_does_not_take_a_parameter_lists_estimator_parameters(arch):
    """imagenet is a builder keyword the estimator sets from init_from, not one of its
    parameters: the estimator's message leaves it out."""
    assert "imagenet" in architecture_parameters(arch)
    estimator = CNNClassifier(arch, kernel_size=3)
    expected = [name for name in architecture_parameters(arch) if name in ARCH_PARAMS]
    with pytest.raises(ValueError, match=re.escape(
            f"arch={arch!r} does not take kernel_size; it takes {', '.join(expected)} "
            "(leave the others at None)")) as caught:
        build_specs(estimator, (3, 32, 32), 10, StartingWeights())
    assert "imagenet" not in str(caught.value)
    with pytest.raises(ValueError, match=r"does not take kernel_size; it takes filters, "
                                         r"activation, dropout, batch_norm, width \(leave"):
        CNNClassifier("resnet18", kernel_size=3).fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])

