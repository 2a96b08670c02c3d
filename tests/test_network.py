"""FittedNetwork (_network.py): the fitted network an estimator keeps as ``network_``."""

import dataclasses
import importlib.util
import pickle

import numpy as np
import pytest

from sklearn_cnn import CNNClassifier
from sklearn_cnn._network import FittedNetwork, LayerInfo
from sklearn_cnn._weights import init_weights
from sklearn_cnn.backends import TrainingConfig
from sklearn_cnn.layers import (
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
    Tanh,
)
from sklearn_cnn.summary import summarize_specs

HAS_TORCH = importlib.util.find_spec("skorch") is not None

#: a residual block among plain layers: keys "0" to "5", and "3.body.0" to "3.body.2"
SPECS = (Conv2d(3, 3, padding=1), ReLU(), MaxPool2d(2),
         Residual((Conv2d(3, 3, padding=1), BatchNorm(), ReLU())), Flatten(), Linear(4))
SHAPE = (1, 6, 6)
KEYS = ["0", "1", "2", "3", "3.body.0", "3.body.1", "3.body.2", "4", "5"]


def weights(specs=SPECS, shape=SHAPE, seed=0):
    """Fresh weights, with BatchNorm statistics moved off their trivial start so that
    copying them matters."""
    rng = np.random.default_rng(seed)
    values = init_weights(specs, shape, rng)
    for key in values:
        if key.endswith("running_mean"):
            values[key] = rng.normal(0, 0.5, values[key].shape).astype(np.float32)
        elif key.endswith("running_var"):
            values[key] = rng.uniform(0.5, 2.0, values[key].shape).astype(np.float32)
    return values


@pytest.fixture
def network():
    return FittedNetwork.build("numpy", SPECS, SHAPE, weights(), notes=["a note"])


def images(n=3, shape=SHAPE, dtype=np.float32, seed=1):
    return np.random.default_rng(seed).random((n, *shape)).astype(dtype)


# -- construction -------------------------------------------------------------------

def test_build_holds_the_weights_and_describes_the_network(network):
    assert network.backend_name == "numpy" and network.dtype == np.float32
    assert network.specs == SPECS and network.input_shape == SHAPE
    assert network.notes == ["a note"]
    for key, value in weights().items():
        np.testing.assert_array_equal(network.get_weights()[key], value, err_msg=key)
    assert repr(network) == ("FittedNetwork(backend='numpy', 6 layers, input_shape=(1, 6, 6), "
                             "dtype=float32)")
    wide = FittedNetwork.build("numpy", SPECS, SHAPE, weights(), dtype=np.float64)
    assert wide.dtype == np.float64
    assert all(w.dtype == np.float64 for w in wide.get_weights().values())


def test_set_weights_loads_in_place(network):
    other = weights(seed=5)
    network.set_weights(other)
    for key, value in other.items():
        np.testing.assert_array_equal(network.get_weights()[key], value, err_msg=key)


def test_to_another_backend_copies_every_weight_and_leaves_the_original(network):
    X = images()
    before = network.outputs(X)
    same = network.to("numpy")
    assert same is not network and same.notes == network.notes
    np.testing.assert_array_equal(same.outputs(X), before)
    if not HAS_TORCH:
        pytest.skip("the torch backend is not installed")
    moved = network.to("torch", config=TrainingConfig())
    assert moved.backend_name == "torch" and network.backend_name == "numpy"
    assert moved.specs == SPECS and moved.input_shape == SHAPE and moved.dtype == np.float32
    for key, value in network.get_weights().items():  # BatchNorm statistics included
        np.testing.assert_array_equal(moved.get_weights()[key], value, err_msg=key)
    np.testing.assert_allclose(moved.outputs(X), before, rtol=1e-5, atol=1e-6)
    back = moved.to("numpy")
    np.testing.assert_allclose(back.outputs(X), before, rtol=1e-5, atol=1e-6)


def test_from_module_needs_a_backend_that_runs_modules():
    with pytest.raises(ValueError, match="needs backend='torch'; got backend='numpy'"):
        FittedNetwork.from_module("numpy", object, SHAPE, 4, 0, config=TrainingConfig())
    if not HAS_TORCH:
        pytest.skip("the torch backend is not installed")
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self, n_outputs):
            super().__init__()
            self.head = torch.nn.Linear(36, n_outputs)

        def forward(self, x):
            return self.head(x.flatten(1))

    network = FittedNetwork.from_module("torch", Tiny, SHAPE, 4, 0, config=TrainingConfig())
    assert network.specs is None and network.backend_name == "torch"
    assert network.outputs(images()).shape == (3, 4)
    for what in (network.layers, network.shape_after, network.summary, lambda: network.to(
            "numpy"), lambda: network.n_outputs):
        with pytest.raises(ValueError, match=r"this network is a custom torch\.nn\.Module"):
            what()


# -- what it is ---------------------------------------------------------------------

def test_layers_walk_into_residual_blocks_with_their_shapes(network):
    layers = network.layers()
    assert [info.key for info in layers] == KEYS
    assert all(isinstance(info, LayerInfo) for info in layers)
    by_key = {info.key: info for info in layers}
    assert by_key["2"].spec == MaxPool2d(2)
    assert (by_key["2"].input_shape, by_key["2"].output_shape) == ((3, 6, 6), (3, 3, 3))
    assert by_key["3.body.1"].spec == BatchNorm()
    assert by_key["3.body.1"].input_shape == by_key["3.body.1"].output_shape == (3, 3, 3)
    assert (by_key["4"].output_shape, by_key["5"].output_shape) == ((27,), (4,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_key["5"].key = "6"


def test_layer_takes_an_int_or_a_key(network):
    assert network.layer(3) == network.layer("3") == network.layer(np.int64(3))
    assert network.layer(3).spec == SPECS[3]
    assert network.layer("3.body.1").spec == BatchNorm()
    for unknown in (9, "9", "3.body.7", "conv", True, 2.0):
        with pytest.raises(ValueError, match=r"is not a layer of this network; its keys are "
                                             r"\['0', '1', '2', '3', '3\.body\.0',"):
            network.layer(unknown)


def test_shape_after_and_n_outputs(network):
    assert network.shape_after(0) == SHAPE
    assert network.shape_after(1) == (3, 6, 6)
    assert network.shape_after(4) == (3, 3, 3)
    assert network.shape_after() == (4,) and network.n_outputs == 4
    maps = FittedNetwork.build("numpy", SPECS[:4], SHAPE, weights(SPECS[:4]))
    assert maps.n_outputs == 27  # the product of the output's shape


def test_summary_is_the_specs_summary(network):
    table = network.summary()
    assert table == summarize_specs(SPECS, SHAPE, ["a note"])
    assert "Note: a note" in str(table)


def test_require_specs_says_what_needs_them():
    custom = FittedNetwork("numpy", object(), None, SHAPE)
    with pytest.raises(ValueError, match=r"^summary\(\) needs an architecture made of "
                                         r"sklearn_cnn\.layers specs; this network is a "
                                         r"custom torch\.nn\.Module$"):
        custom.require_specs("summary()")
    with pytest.raises(ValueError, match=r"^the layer list needs"):
        custom.layer(0)
    FittedNetwork.build("numpy", SPECS, SHAPE, weights()).require_specs("anything")


# -- running it ---------------------------------------------------------------------

def test_images_reads_every_layout_as_the_networks_images(network):
    X = images(5)
    expected = network.images(X)
    assert expected.shape == (5, *SHAPE) and expected.dtype == np.float32
    for layout in (X[:, 0], X[:, 0, :, :, None], X.reshape(5, -1), X.astype(np.float64)):
        np.testing.assert_array_equal(network.images(layout), expected)
    wide = FittedNetwork.build("numpy", SPECS, SHAPE, weights(), dtype=np.float64)
    assert wide.images(X).dtype == np.float64  # the network's dtype, not the input's


def test_images_of_the_wrong_shape_name_the_owner(network):
    with pytest.raises(ValueError, match=r"^X has 35 features, but CNNRegressor is expecting 36 "
                                         r"features as input: flat rows of images of shape "
                                         r"\(1, 6, 6\)"):
        network.images(np.zeros((2, 35)), owner="CNNRegressor")
    with pytest.raises(ValueError, match=r"^X has 25 features, but Owner is expecting 36 "
                                         r"features as input: X holds images of shape "
                                         r"\(1, 5, 5\) \(C, H, W\), but this Owner was fitted "
                                         r"on images of shape \(1, 6, 6\)"):
        network.images(np.zeros((2, 1, 5, 5)), owner="Owner")
    # as many values, in another shape: no count, only the shapes
    with pytest.raises(ValueError, match=r"^X holds images of shape \(4, 3, 3\) \(C, H, W\), "
                                         r"but .* fitted on images of shape \(1, 6, 6\)$"):
        network.images(np.zeros((2, 4, 3, 3)))


def test_one_image_is_told_to_add_a_batch_axis(network):
    X = images(1)
    for one in (X[0, 0], X[0, 0][:, :, None]):  # (H, W) and (H, W, C)
        with pytest.raises(ValueError, match=r"shape of one image, \(6, 6(, 1)?\); .* pass "
                                             r"X\[None\] \(or \[image\]\) for one image"):
            network.images(one)
    assert network.images(X[0, 0][None]).shape == (1, *SHAPE)


def test_outputs_are_finite_float64_or_an_error(network):
    X = images(3)
    outputs = network.outputs(X)
    assert outputs.shape == (3, 4) and outputs.dtype == np.float64
    assert np.isfinite(outputs).all()
    broken = X.copy()
    broken[1, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match=r"overflowed to inf or NaN for 1 of the 3 images"):
        network.outputs(broken)
    network.set_weights({key: value * np.float32(1e20)
                         for key, value in network.get_weights().items()})
    with pytest.raises(ValueError, match=r"overflowed to inf or NaN for 3 of the 3 images; "
                                         r".*scale the images"):
        network.outputs(X)


def test_forward_gives_each_layers_output(network):
    X = images(2)
    assert network.forward(X, 2).shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(network.forward(X, "2"), network.forward(X, 2))
    assert network.forward(X, "3.body.1").shape == (2, 3, 3, 3)
    # the prediction steps (a convolution pooled in windows) sum in another order
    np.testing.assert_allclose(network.forward(X, 5), network.outputs(X), rtol=1e-5)
    relu = network.forward(X, 1)
    assert (relu >= 0).all() and (relu == np.maximum(network.forward(X, 0), 0)).all()
    with pytest.raises(ValueError, match="is not a layer"):
        network.forward(X, 6)


TINY = (Conv2d(2, 3, padding=1), Tanh(), AvgPool2d(2), Flatten(), Linear(3))
TINY_SHAPE = (1, 4, 4)


def test_gradient_matches_finite_differences_on_a_float64_network():
    network = FittedNetwork.build("numpy", TINY, TINY_SHAPE, init_weights(
        TINY, TINY_SHAPE, np.random.default_rng(0)), dtype=np.float64)
    rng = np.random.default_rng(1)
    X = rng.random((2, *TINY_SHAPE))
    output_grad = rng.normal(size=(2, 3))
    activation, gradient = network.gradient(X, output_grad)
    np.testing.assert_array_equal(activation, X)
    assert gradient.shape == X.shape and gradient.dtype == np.float64

    def objective(Z):
        return float((network.outputs(Z) * output_grad).sum())

    step = 1e-6
    for index in np.ndindex(X.shape):
        delta = np.zeros_like(X)
        delta[index] = step
        numeric = (objective(X + delta) - objective(X - delta)) / (2 * step)
        assert gradient[index] == pytest.approx(numeric, rel=1e-6, abs=1e-9), index
    # after the last hidden layer the gradient is the output layer's matrix, exactly
    weight = network.get_weights()["4.weight"]
    activation, flat_gradient = network.gradient(X, output_grad, 3)
    np.testing.assert_allclose(activation, network.forward(X, 3))
    np.testing.assert_allclose(flat_gradient, output_grad @ weight, rtol=1e-12)
    _, pooled_gradient = network.gradient(X, output_grad, "2")
    np.testing.assert_allclose(pooled_gradient, (output_grad @ weight).reshape(2, 2, 2, 2),
                               rtol=1e-12)


def test_gradient_is_taken_at_top_level_layers_only(network):
    X = images(2)
    with pytest.raises(ValueError, match=r"gradients are taken at a top-level layer; got "
                                         r"'3\.body\.1'"):
        network.gradient(X, np.ones((2, 4)), "3.body.1")
    activation, gradient = network.gradient(X, np.ones((2, 4)), 3)  # the block itself
    assert activation.shape == gradient.shape == (2, 3, 3, 3)
    assert gradient.dtype == np.float32  # output_grad is cast to the images' dtype


# -- weights and state --------------------------------------------------------------

def test_portable_state_round_trip_and_pickle(network, backend):
    network = network.to(backend)
    X = images(3)
    expected = network.outputs(X)
    state = network.portable_state()
    assert state["backend"] == backend and state["specs"] == SPECS
    assert state["input_shape"] == SHAPE and state["notes"] == ["a note"]
    for copy in (FittedNetwork.from_portable_state(state),
                 pickle.loads(pickle.dumps(network))):
        assert copy.backend_name == backend and copy.specs == SPECS
        assert copy.input_shape == SHAPE and copy.notes == ["a note"]
        np.testing.assert_array_equal(copy.outputs(X), expected)
        for key, value in network.get_weights().items():
            np.testing.assert_array_equal(copy.get_weights()[key], value, err_msg=key)


def test_the_estimators_network_is_a_fitted_network(digits):
    from sklearn_cnn import CNNClassifier

    X, X_test, y, _ = digits
    clf = CNNClassifier("lenet", width=0.25, max_iter=1, random_state=0).fit(X[:60], y[:60])
    network = clf.network_
    assert isinstance(network, FittedNetwork) and network.n_outputs == 10
    np.testing.assert_array_equal(network.outputs(network.images(X_test[:5])).argmax(axis=1),
                                  clf.predict(X_test[:5]))


def test_predicting_a_uint8_memmap_converts_it_pass_by_pass(backend, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (300, 8, 8), dtype=np.uint8)
    clf = CNNClassifier("lenet", backend=backend, max_iter=1, random_state=0).fit(
        pixels[:100], np.arange(100) % 3)
    path = tmp_path / "images.u8"
    pixels.tofile(path)
    mapped = np.memmap(path, dtype=np.uint8, mode="r", shape=pixels.shape)
    np.testing.assert_array_equal(clf.predict_proba(mapped),
                                  clf.predict_proba(pixels.astype(np.float32) / 255))
    assert clf.score(mapped, np.arange(300) % 3) == clf.score(pixels, np.arange(300) % 3)


@pytest.mark.parametrize("paths", [
    ["a.png", "b.png"], ("a.png",), "a.png", np.array(["a.png", "b.png"]),
    np.array(["a.png"], dtype=object)], ids=["list", "tuple", "one str", "str array",
                                            "object array"])
def test_file_paths_are_refused_with_the_loader_to_use(paths):
    """A fitted estimator given file paths names ImageLoader at the fitted size and
    channel count, instead of scikit-learn's 'Expected 2D array, got 1D array'."""
    from pathlib import Path

    X = np.random.default_rng(0).random((20, 3, 8, 8), dtype=np.float32)
    clf = CNNClassifier("lenet", width=0.25, max_iter=1, random_state=0).fit(X, np.arange(20) % 2)
    message = (r"X holds file paths \('a.png'...\), but CNNClassifier takes images as arrays"
               r".*make_pipeline\(ImageLoader\(size=\(8, 8\), mode='RGB'\), CNNClassifier\(\)\)"
               r".*ImageLoader\(size=\(8, 8\), mode='RGB'\).fit_transform\(paths\)")
    for method in (clf.predict, clf.predict_proba, clf.transform):
        with pytest.raises(ValueError, match=message):
            method(paths)
    with pytest.raises(ValueError, match=r"file paths \('a.png'...\)"):
        clf.score(paths, [0, 1])
    with pytest.raises(ValueError, match="file paths"):
        clf.network_.images([Path("a.png")])
    # image arrays, and 1-D rows that are not text, still get the usual answers
    assert clf.predict(X[:2]).shape == (2,)
    with pytest.raises(ValueError, match="Expected 2D array"):
        clf.predict(X[0, 0, 0])

