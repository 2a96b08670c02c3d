"""The architecture registry and the adaptation rule (architectures/_registry.py)."""

import re

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_cnn import CNNClassifier, list_architectures, summary
from sklearn_cnn.architectures import (
    Architecture,
    architecture_parameters,
    build_architecture,
    get_architecture,
    register_architecture,
    unregister_architecture,
)
from sklearn_cnn.layers import (
    AvgPool2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
)

#: the networks the teaching texts and the README name
CANON = ("lenet", "simple", "alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "resnet20",
         "auto")


@pytest.fixture
def registered():
    """Registers ``tiny_test`` (native size 12: conv, two pools) for one test."""
    @register_architecture("tiny_test", native_size=12)
    def tiny(n_classes, *, filters=4, input_shape=None):
        return (Conv2d(filters, 3), ReLU(), MaxPool2d(2), AvgPool2d(2), Flatten(),
                Linear(n_classes))

    yield tiny
    if "tiny_test" in list_architectures():
        unregister_architecture("tiny_test")


def test_the_canon_is_registered_and_builds_a_classifier():
    for name in CANON:
        entry = get_architecture(name)
        assert isinstance(entry, Architecture) and entry.name == name
        specs, _ = build_architecture(name, (3, 32, 32), n_classes=4)
        assert specs[-1] == Linear(4)


def test_register_list_and_unregister(registered):
    names = list_architectures()
    assert "tiny_test" in names and names == sorted(names)
    assert get_architecture("tiny_test") == Architecture("tiny_test", registered, 12)
    # a builder that sizes itself is handed the images' shape; the parameter is not
    # one the user sets
    assert architecture_parameters("tiny_test") == ["filters"]
    entry = unregister_architecture("tiny_test")
    assert entry.builder is registered and "tiny_test" not in list_architectures()
    with pytest.raises(ValueError, match=r"Unknown arch 'tiny_test'; expected one of \["):
        get_architecture("tiny_test")
    with pytest.raises(ValueError, match="Unknown arch"):
        unregister_architecture("tiny_test")
    with pytest.raises(ValueError, match="Unknown arch"):
        get_architecture(["not", "a", "name"])


@pytest.mark.parametrize("arch", list_architectures())
def test_architecture_parameters_are_what_the_builder_accepts(arch):
    """Every parameter listed is taken (its default value given again changes
    nothing); a parameter not listed is refused, naming the ones that are."""
    import inspect

    plain, _ = build_architecture(arch, (3, 32, 32), 5)
    defaults = inspect.signature(get_architecture(arch).builder).parameters
    for name in architecture_parameters(arch):
        assert build_architecture(arch, (3, 32, 32), 5, **{name: defaults[name].default}
                                  )[0] == plain, name
    assert "input_shape" not in architecture_parameters(arch)
    with pytest.raises(ValueError, match=rf"arch={arch!r} does not take colour; it takes "
                                         rf"{', '.join(architecture_parameters(arch))}"):
        build_architecture(arch, (3, 32, 32), 5, colour=True)


def test_parameters_that_do_not_apply_are_clear_errors():
    X, y = np.zeros((4, 8, 8)), [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"arch='resnet20' does not take hidden_units.*filters"):
        CNNClassifier("resnet20", hidden_units=(10,)).fit(X, y)
    with pytest.raises(ValueError, match="does not take kernel_size"):
        CNNClassifier("vgg11", kernel_size=5).fit(X, y)
    with pytest.raises(ValueError, match="named architectures only"):
        CNNClassifier([Conv2d(2, 3)], filters=(3,)).fit(X, y)


@pytest.mark.parametrize("arch", list_architectures())
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 2, 3), (3, 8, 8), (1, 28, 28),
                                   (4, 33, 17)])
def test_every_architecture_builds_for_any_image_size(arch, shape):
    result = summary(arch, shape, n_classes=3)
    assert result.rows[-1].output_shape == (3,)
    assert result.total_params > 0


def test_small_inputs_are_adapted_and_the_summary_says_so():
    # 8x8 digits: same convolutions, and the first pool is left out so the last map
    # is 4x4 as on 28x28: the head is LeNet's own (44,426 parameters again)
    specs, notes = build_architecture("lenet", (1, 8, 8), n_classes=10)
    assert all(s.padding == "same" for s in specs if isinstance(s, Conv2d))
    assert [type(s).__name__ for s in specs[:5]] == ["Conv2d", "ReLU", "Conv2d", "ReLU",
                                                      "MaxPool2d"]
    assert len(notes) == 2 and "same" in notes[0] and "layer 2 left out" in notes[1]
    assert summary("lenet", (1, 8, 8)).total_params == 44_426
    # 16x16: both pools fit the rule (16 / 4 = 4)
    specs, _ = build_architecture("lenet", (1, 16, 16), n_classes=10)
    assert sum(isinstance(s, MaxPool2d) for s in specs) == 2
    # 1x1: no pool fits
    specs, notes = build_architecture("lenet", (1, 1, 1), n_classes=10)
    assert not any(isinstance(s, MaxPool2d) for s in specs)
    assert len(notes) == 3
    text = str(summary("lenet", (1, 1, 1)))
    assert "smaller than its window" in text and "Total params" in text
    # native size and larger: exactly the published network
    specs, notes = build_architecture("lenet", (1, 28, 28), n_classes=10)
    assert notes == [] and all(s.padding == 0 for s in specs if isinstance(s, Conv2d))


def test_same_padding_reaches_into_residual_blocks():
    specs, notes = build_architecture("resnet20", (3, 16, 16), n_classes=10)
    assert "resnet20's native 32x32" in notes[0]
    convs = [s for block in specs if isinstance(block, Residual)
             for s in (*block.body, *block.shortcut) if isinstance(s, Conv2d)]
    assert convs and all(s.padding == "same" for s in convs)
    # strided convolutions alone shrink the map: no pool to leave out, and the rule stops
    assert len(notes) == 1


def test_imagenet_forms_keep_their_geometry_on_small_images():
    specs, notes = build_architecture("resnet18", (3, 16, 16), 10, imagenet=True)
    assert specs[0] == Conv2d(64, 7, stride=2, padding=3, bias=False) and not any(
        "same" in note for note in notes)


def test_an_architecture_that_does_not_fit_its_own_native_size_says_so():
    @register_architecture("tiny_broken", native_size=2)
    def broken(n_classes, *, filters=4):
        return (Conv2d(filters, 3), Flatten(), Linear(n_classes))

    try:
        with pytest.raises(ValueError, match=r"arch='tiny_broken' with filters=5 does not "
                                             r"fit its native 2x2 layout, which it then "
                                             r"adapts to these 1x1 images: .*3x3"):
            build_architecture("tiny_broken", (1, 1, 1), 2, filters=5)
    finally:
        unregister_architecture("tiny_broken")


def test_spec_list_is_used_as_given():
    specs = [Conv2d(4, 3), ReLU(), Flatten(), Linear(2)]
    assert summary(specs, (1, 5, 5), n_classes=2).total_params == 40 + 4 * 9 * 2 + 2
    assert build_architecture(specs, (1, 5, 5), 2) == (tuple(specs), [])


def test_unknown_arch_and_bad_specs_are_clear_errors():
    with pytest.raises(ValueError, match=r"Unknown arch 'lenet6'.*lenet"):
        summary("lenet6", (1, 28, 28))
    with pytest.raises(ValueError, match="does not fit"):
        summary([Conv2d(2, 5), Flatten(), Linear(2)], (1, 3, 3))
    with pytest.raises(ValueError, match="Flatten"):
        summary([Conv2d(2, 3), Linear(2)], (1, 5, 5))
    with pytest.raises(ValueError, match="padding"):
        Conv2d(2, 3, padding="full")
    with pytest.raises(ValueError, match=r"must hold sklearn_cnn.layers specs, got "
                                         r"\['Conv2d', 'str'\]"):
        build_architecture([Conv2d(2, 3), "relu"], (1, 5, 5), 2)


def test_spec_lists_are_checked_against_the_data_with_the_layer_named():
    with pytest.raises(ValueError, match=r"empty list of layers.*Linear\(3\)"):
        build_architecture([], (1, 8, 8), 3)
    with pytest.raises(ValueError, match=r"last layer, Linear\(out_features=2.*layer 3\), "
                                         r"outputs shape \(2,\), but y has 10 classes"):
        build_architecture([Conv2d(2, 3), ReLU(), Flatten(), Linear(2)], (1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"outputs shape \(2, 6, 6\)"):
        build_architecture([Conv2d(2, 3)], (1, 8, 8), 2)
    with pytest.raises(ValueError, match=r"arch layer 2, Conv2d.*does not fit its input of "
                                         r"shape \(72,\)"):
        build_architecture([Conv2d(2, 3), Flatten(), Conv2d(2, 3), Linear(2)], (1, 8, 8), 2)
    with pytest.raises(ValueError, match=r"but y has 3 outputs"):
        build_architecture([Flatten(), Linear(2)], (1, 8, 8), 3, outputs="outputs")


def test_numpy_numbers_make_the_same_specs_as_python_numbers():
    assert Conv2d(np.int64(4), np.int32(3), stride=(np.int64(1), 1)) == Conv2d(4, 3, (1, 1))
    spec = Conv2d(np.int64(4), np.array([3, 3]))
    assert type(spec.out_channels) is int and spec.kernel_size == (3, 3)
    assert MaxPool2d(np.uint8(2)).kernel == (2, 2)
    assert Conv2d(np.array(4), np.array(3)) == Conv2d(4, 3)  # 0-d arrays
    plain = build_architecture("lenet", (1, 28, 28), 10, filters=(6, 16), kernel_size=5,
                               dropout=0.5, width=1.0)
    grid = build_architecture("lenet", (1, 28, 28), np.int64(10), filters=np.array([6, 16]),
                              kernel_size=np.int64(5), dropout=np.float32(0.5),
                              width=np.float64(1.0))
    assert grid == plain
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        Conv2d(4, np.float64(2.5))


def test_grid_search_over_filters_in_a_pipeline_with_two_jobs(digits):
    """Architecture parameters are estimator parameters: a grid search sets them
    through a pipeline, in two worker processes."""
    X_train, X_test, y_train, y_test = digits
    flatten = FunctionTransformer(np.reshape, kw_args={"shape": (-1, 64)})
    pipe = make_pipeline(flatten, CNNClassifier("lenet", max_iter=5, random_state=0))
    search = GridSearchCV(pipe, {"cnnclassifier__filters": [(6, 16), (16, 32)]}, cv=2,
                          n_jobs=2).fit(X_train[:600], y_train[:600])  # 0.96 measured
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.best_params_["cnnclassifier__filters"] in [(6, 16), (16, 32)]
    assert search.score(X_test, y_test) > 0.9


def test_parameters_that_fit_no_image_name_the_sizes():
    with pytest.raises(ValueError, match=r"kernel_size=100.*native 28x28.*these 8x8"):
        build_architecture("lenet", (1, 8, 8), 10, kernel_size=100)


def test_more_stages_than_the_image_has_room_for_name_filters():
    """LeNet's third stage gets a 4x4 map from 28x28 images: the error names filters,
    how many stages fit, and the other cures; kernel_size when it is the cause."""
    with pytest.raises(ValueError, match=re.escape(
            "arch='lenet' with filters=(6, 16, 32) does not fit 28x28 images: Conv2d kernel "
            "5x5 does not fit input 4x4 with padding 0. Use fewer values in filters (each one "
            "adds a convolution stage that shrinks the map; at most 2 fit) or larger images")):
        build_architecture("lenet", (1, 28, 28), 10, filters=(6, 16, 32))
    with pytest.raises(ValueError, match=r"with kernel_size=13 does not fit 28x28 images.*"
                                         r"Use a smaller kernel_size or larger images"):
        build_architecture("lenet", (1, 28, 28), 10, kernel_size=13)
    with pytest.raises(ValueError, match=r"at most 3 fit\), a smaller kernel_size or larger"):
        build_architecture("lenet", (1, 28, 28), 10, filters=(4,) * 6, kernel_size=3)
    # smaller images are laid out as native ones first: a larger image is no cure there
    with pytest.raises(ValueError, match=r"does not fit its native 28x28 layout, which it "
                                         r"then adapts to these 8x8 images.*at most 2 fit\)$"):
        build_architecture("lenet", (1, 8, 8), 10, filters=(6, 16, 32))
    with pytest.raises(ValueError, match=r"arch='lenet' with filters=\(6, 16, 32\)"):
        CNNClassifier("lenet", filters=(6, 16, 32)).fit(np.zeros((4, 28, 28)), [0, 1, 0, 1])

