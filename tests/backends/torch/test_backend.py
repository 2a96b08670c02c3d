"""The PyTorch backend: backends/torch/backend.py (devices, own modules, bfloat16)."""

import io
import pickle
import warnings
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn_cnn import CNNClassifier, CNNRegressor  # noqa: E402
from sklearn_cnn import layers as S  # noqa: E402
from sklearn_cnn._weights import init_weights  # noqa: E402
from sklearn_cnn.backends import TrainingConfig  # noqa: E402
from sklearn_cnn.backends._base import Batch  # noqa: E402
from sklearn_cnn.backends.torch import BACKEND  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SPECS = (S.Conv2d(3, 3, padding=1), S.BatchNorm(), S.ReLU(), S.MaxPool2d(2), S.Flatten(),
         S.Dropout(0.2), S.Linear(4))
SHAPE = (1, 6, 6)


def build(config=None):
    weights = init_weights(SPECS, SHAPE, np.random.default_rng(0))
    return BACKEND.build(SPECS, SHAPE, weights, config=config)


def batches(sizes, seed=0, learning_rate=0.01):
    rng = np.random.default_rng(seed)
    return [Batch(rng.normal(size=(n, *SHAPE)).astype(np.float32), rng.integers(0, 4, n),
                  None, learning_rate) for n in sizes]


def test_device_errors():
    X, y = np.zeros((4, 6, 6)), [0, 1, 0, 1]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            CNNClassifier(backend="torch", device="cuda").fit(X, y)
    with pytest.raises(ValueError, match="not a torch device"):
        CNNClassifier(backend="torch", device="bogus").fit(X, y)
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="no MPS"):
            CNNClassifier(backend="torch", device="mps").fit(X, y)


def test_trains_on_every_sample_without_a_hidden_validation_split(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:150], y_train[:150]
    clf = CNNClassifier(backend="torch", max_iter=2, batch_size=64, random_state=0).fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    assert clf.t_ == 2 * len(X)
    # no hidden validation split: skorch trained on every sample
    assert clf.model_.train_split is None
    assert sum(clf.model_.history[-1, "batches", :, "train_batch_size"]) == len(X)
    assert clf.model_.history[:, "train_loss"] == pytest.approx(clf.loss_curve_, rel=1e-6)


def optimizer_steps(model):
    return [s["step"].item() for s in model.optimizer_.state_dict()["state"].values()]


def test_configure_keeps_the_optimizer_state_when_only_the_loss_or_rate_changes():
    model = build(TrainingConfig(solver="adam"))
    BACKEND.train_epoch(model, batches([5]), seed=0)
    assert set(optimizer_steps(model)) == {1.0}
    config = replace(model.config, learning_rate_init=0.5, alpha=0.1, max_grad_norm=1.0)
    BACKEND.configure(model, config, keep_state=True)
    assert set(optimizer_steps(model)) == {1.0} and model.config == config
    assert dict(model.callbacks_)["clip"].gradient_clip_value == 1.0


@pytest.mark.parametrize("keep_state, change", [(False, {}), (True, {"beta_1": 0.5}),
                                                (True, {"solver": "sgd"})])
def test_configure_makes_a_fresh_optimizer_otherwise(keep_state, change):
    """skorch's set_params refuses optimizer arguments on an initialized net: a
    warm-started fit whose solver, betas or momentum changed failed there."""
    model = build(TrainingConfig(solver="adam"))
    BACKEND.train_epoch(model, batches([5]), seed=0)
    config = replace(model.config, **change)
    BACKEND.configure(model, config, keep_state=keep_state)
    assert optimizer_steps(model) == []
    expected = torch.optim.SGD if config.solver == "sgd" else torch.optim.Adam
    assert type(model.optimizer_) is expected
    BACKEND.train_epoch(model, batches([5]), seed=1)  # and it trains


def test_cpu_kernels_are_channels_last_and_weights_stay_canonical():
    """float32 on the CPU runs channels-last; what comes out and goes in is canonical."""
    model = build()
    kernel = model.module_[0].weight                                  # (3, 1, 3, 3)
    assert kernel.stride() == (9, 1, 3, 1)  # channels-last ((9, 9, 3, 1) plain)
    weights = BACKEND.get_weights(model)
    expected = init_weights(SPECS, SHAPE, np.random.default_rng(0))
    for key, value in weights.items():
        assert value.flags.c_contiguous
        np.testing.assert_array_equal(value, expected[key].astype(np.float32))
    X = np.random.default_rng(1).normal(size=(5, *SHAPE)).astype(np.float32)
    plain = BACKEND.build(SPECS, SHAPE, expected, dtype=np.float64)
    assert plain.module_[0].weight.stride() == (9, 9, 3, 1)  # float64: the plain layout
    np.testing.assert_allclose(BACKEND.predict_output(model, X),
                               BACKEND.predict_output(plain, X), rtol=1e-5, atol=1e-6)
    BACKEND.train_epoch(model, batches([5, 3]), seed=0)
    assert model.module_[0].weight.stride() == (9, 1, 3, 1)


def test_snapshot_and_restore_round_trip_exactly():
    model = build()
    BACKEND.train_epoch(model, batches([4, 4]), seed=0)
    state = BACKEND.snapshot(model)
    once = BACKEND.train_epoch(model, batches([4, 4], seed=1), seed=1)
    trained = BACKEND.get_weights(model)
    BACKEND.restore(model, state)
    assert len(model.history) == 1  # the epoch since is forgotten
    assert BACKEND.train_epoch(model, batches([4, 4], seed=1), seed=1) == once
    for key, value in BACKEND.get_weights(model).items():
        np.testing.assert_array_equal(value, trained[key], err_msg=key)


def test_to_portable_and_back_keeps_weights_optimizer_and_history():
    model = build(TrainingConfig(solver="sgd", momentum=0.9))
    for epoch in range(2):
        BACKEND.train_epoch(model, batches([4, 3], seed=epoch), seed=epoch)
    portable = BACKEND.to_portable(model)
    # NumPy arrays and plain Python values: no tensor anywhere

    def leaves(value):
        if isinstance(value, dict):
            return [leaf for item in value.values() for leaf in leaves(item)]
        if isinstance(value, (list, tuple)):
            return [leaf for item in value for leaf in leaves(item)]
        return [value]

    assert not [leaf for leaf in leaves(portable) if isinstance(leaf, torch.Tensor)]
    found = set()

    class Recorder(pickle.Unpickler):  # notes every class the pickle names
        def find_class(self, module, name):
            cls = super().find_class(module, name)
            found.add(cls)
            return cls

    back = BACKEND.from_portable(SPECS, SHAPE, Recorder(io.BytesIO(pickle.dumps(portable)))
                                 .load())
    ours = {cls for cls in found if cls.__module__.startswith("sklearn_cnn")}
    assert ours and ours <= set(BACKEND.portable_types())
    assert {cls.__module__.split(".")[0] for cls in found - ours} <= {
        "numpy", "builtins", "copyreg", "_codecs", "collections"}
    for key, value in BACKEND.get_weights(model).items():
        np.testing.assert_array_equal(BACKEND.get_weights(back)[key], value)
    assert back.config == model.config and len(back.history) == 2
    assert back.history[:, "train_loss"] == model.history[:, "train_loss"]
    # the optimizer's momentum came back too: the next epoch is the same in both
    next_epoch = batches([4, 3], seed=5)
    assert BACKEND.train_epoch(back, next_epoch, seed=5) == \
        BACKEND.train_epoch(model, next_epoch, seed=5)
    for key, value in BACKEND.get_weights(model).items():
        np.testing.assert_array_equal(BACKEND.get_weights(back)[key], value)
    if not torch.cuda.is_available():  # saved on a GPU machine: loaded on the CPU
        with pytest.warns(UserWarning, match="loaded on the CPU"):
            moved = BACKEND.from_portable(SPECS, SHAPE, {**portable, "device": "cuda"})
        assert str(moved.device) == "cpu"


def test_pickle_and_load_without_cuda(digits):
    X_train, _, y_train, _ = digits
    clf = CNNClassifier(backend="torch", max_iter=1, random_state=0)
    clf.fit(X_train[:100], y_train[:100])
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X_train), clf.predict_proba(X_train))
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the CPU fallback is not exercised")
    # a net saved on a GPU machine: skorch maps its tensors to the CPU on load
    clf.model_.device = "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning says what happened
        moved = pickle.loads(pickle.dumps(clf))
    assert str(moved.model_.device) == "cpu"
    np.testing.assert_array_equal(moved.predict_proba(X_train), restored.predict_proba(X_train))


class TinyNet(torch.nn.Module):
    def __init__(self, n_classes, input_shape=(1, 8, 8)):
        super().__init__()
        channels, height, width = input_shape
        self.conv = torch.nn.Conv2d(channels, 8, 3, padding=1)
        self.head = torch.nn.Linear(8 * height * width, n_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_custom_torch_module_class_and_instance(digits):
    X_train, X_test, y_train, y_test = digits
    clf = CNNClassifier(TinyNet, backend="torch", max_iter=5, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.5
    assert clf.model_.module_.head.out_features == 10
    instance = TinyNet(n_classes=10)
    before = instance.conv.weight.detach().clone()
    fitted = CNNClassifier(instance, backend="torch", max_iter=2).fit(X_train[:200],
                                                                     y_train[:200])
    assert torch.equal(instance.conv.weight, before)  # the caller's module is untouched
    assert fitted.predict_proba(X_test).shape == (len(X_test), 10)
    with pytest.raises(ValueError, match=r"custom torch\.nn\.Module"):
        fitted.to_backend("numpy")
    with pytest.raises(ValueError, match=r"output \(n_samples, 3\)"):
        CNNClassifier(instance, backend="torch").fit(X_train[:30], y_train[:30] % 3)
    with pytest.raises(ValueError, match="needs backend='torch'"):
        CNNClassifier(TinyNet).fit(X_train, y_train)
    # what only specs can tell: layer outputs, gradients at a layer
    with pytest.raises(ValueError, match="layer outputs needs an architecture made of"):
        BACKEND.forward(fitted.model_, X_test[:2, None], "0")
    with pytest.raises(ValueError, match="layer gradients needs an architecture made of"):
        BACKEND.gradient(fitted.model_, X_test[:2, None], np.ones((2, 10)), key="0")
    _, gradient = BACKEND.gradient(fitted.model_, X_test[:2, None], np.ones((2, 10)))
    assert gradient.shape == (2, 1, 8, 8)  # with respect to the images: any module


def test_a_module_that_fails_on_the_images_is_a_clear_error(digits):
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match=r"fails on images of shape \(1, 8, 8\)"):
        CNNClassifier(TinyNet(10, input_shape=(1, 9, 9)), backend="torch").fit(
            X_train[:30], y_train[:30])


class TinyRegressor(torch.nn.Module):
    def __init__(self, n_outputs, in_channels):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 4, 3)
        self.head = torch.nn.LazyLinear(n_outputs)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_custom_torch_module_regresses(digits):
    X_train, X_test, y_train, y_test = digits
    reg = CNNRegressor(TinyRegressor, backend="torch", max_iter=8, random_state=0)
    reg.fit(X_train, y_train.astype(float))
    assert reg.model_.module_.head.out_features == 1
    assert reg.score(X_test, y_test) > 0.5


def test_bfloat16_training_follows_float32_and_predicts_in_float32(digits):
    """Under autocast the products are rounded to bfloat16 (8 bits of mantissa): one
    step of plain SGD on the whole set moves the weights as float32 does to within a
    tenth of the move, training reaches float32's accuracy, and the weights and
    predictions stay float32."""
    X_train, X_test, y_train, y_test = digits
    sgd = dict(arch="lenet", backend="torch", solver="sgd", learning_rate="constant",
               learning_rate_init=0.05, momentum=0.0, max_iter=1, random_state=0,
               batch_size=len(X_train))
    start = CNNClassifier(**{**sgd, "learning_rate_init": 1e-12}).fit(X_train, y_train)
    full = CNNClassifier(**sgd).fit(X_train, y_train)
    half = CNNClassifier(mixed_precision="bfloat16", **sgd).fit(X_train, y_train)
    assert all(w.dtype == np.float32 for w in half.get_weights().values())

    def flat(clf):
        return np.concatenate([w.ravel() for w in clf.get_weights().values()])

    moved = np.linalg.norm(flat(full) - flat(start))
    assert np.linalg.norm(flat(half) - flat(full)) <= 0.1 * moved
    adam = dict(arch="lenet", backend="torch", max_iter=5, random_state=0)
    full = CNNClassifier(**adam).fit(X_train, y_train)
    half = CNNClassifier(mixed_precision="bfloat16", **adam).fit(X_train, y_train)
    assert half.score(X_test, y_test) > full.score(X_test, y_test) - 0.03
    # predictions are float32 computations, not autocast ones: the same as on NumPy
    np.testing.assert_allclose(half.predict_proba(X_test),
                               half.to_backend("numpy").predict_proba(X_test), atol=1e-5)
    with pytest.raises(ValueError, match="mixed_precision='bfloat16' is a torch backend"):
        CNNClassifier(mixed_precision="bfloat16").fit(X_train, y_train)


def test_bfloat16_on_a_cpu_that_emulates_it_warns(digits, monkeypatch):
    """Where the CPU lacks AVX-512 BF16 and AMX, autocast to bfloat16 is emulated
    (6.4x slower than float32 on an AVX2 CPU): the fit says so, and still trains;
    a CPU that has it, or float32 training, gets no warning."""
    from sklearn_cnn.backends.torch import backend as torch_backend

    X_train, _, y_train, _ = digits
    X, y = X_train[:200], y_train[:200]
    params = dict(arch="lenet", backend="torch", max_iter=1, random_state=0)
    monkeypatch.setattr(torch_backend, "cpu_has_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="emulates bfloat16"):
        clf = CNNClassifier(mixed_precision="bfloat16", **params).fit(X, y)
    assert clf.n_iter_ == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CNNClassifier(**params).fit(X, y)
        monkeypatch.setattr(torch_backend, "cpu_has_bfloat16", lambda: True)
        CNNClassifier(mixed_precision="bfloat16", **params).fit(X, y)
    assert not [w for w in caught if "bfloat16" in str(w.message)]


def test_cpu_prediction_passes_are_sized_by_the_widest_activation():
    """Passes hold about PREDICT_ACTIVATIONS_CPU values of the widest activation (the
    first convolution's 3 maps of 6x6 here: 3x the input), and a module whose
    activations are unknown (pickled before they were recorded) falls back to input
    values; either way the outputs are the same."""
    from sklearn_cnn.backends.torch import backend as torch_backend

    model = build()
    assert model.widest_activation_ == 3 * 6 * 6
    expected = torch_backend.predict_batch_size(
        SHAPE, torch_backend.PREDICT_ACTIVATIONS_CPU, 3 * 6 * 6)
    assert torch_backend._pass_size(model, SHAPE) == expected == 512
    X = np.random.default_rng(2).normal(size=(700, *SHAPE)).astype(np.float32)
    outputs = BACKEND.predict_output(model, X)
    del model.widest_activation_
    loaded = pickle.loads(pickle.dumps(model))
    assert torch_backend._pass_size(loaded, SHAPE) == torch_backend.predict_batch_size(
        SHAPE, torch_backend.PREDICT_VALUES_CPU)
    np.testing.assert_allclose(BACKEND.predict_output(loaded, X), outputs,
                               rtol=1e-5, atol=1e-6)
