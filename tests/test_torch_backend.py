"""The PyTorch backend: same specs, same numbers as the NumPy backend, through skorch."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from test_numpy_layers import GRADIENT_CASES  # noqa: E402

from sklearn_cnn import CNNClassifier, CNNRegressor, list_architectures  # noqa: E402
from sklearn_cnn import layers as S  # noqa: E402
from sklearn_cnn._weights import init_weights  # noqa: E402
from sklearn_cnn.architectures import build_architecture  # noqa: E402
from sklearn_cnn.backends.numpy import BUILDERS as NUMPY_BUILDERS  # noqa: E402
from sklearn_cnn.backends.numpy import Network  # noqa: E402
from sklearn_cnn.backends.torch import BUILDERS as TORCH_BUILDERS  # noqa: E402
from sklearn_cnn.backends.torch import build_module, export_canonical, load_canonical  # noqa: E402


def test_both_builder_tables_cover_exactly_the_spec_types():
    assert set(TORCH_BUILDERS) == set(NUMPY_BUILDERS) == set(S.SPEC_TYPES)


def random_weights(specs, in_shape, seed=0):
    """Initial weights of realistic scale, with biases, BatchNorm scale and shift and
    running statistics moved away from their trivial starting values."""
    rng = np.random.default_rng(seed)
    weights = init_weights(tuple(specs), in_shape, rng)
    for key, value in weights.items():
        if key.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, value.shape)
        elif value.ndim == 1:  # biases, BatchNorm weight/bias, running_mean
            value = value + rng.normal(0, 0.1, value.shape)
        weights[key] = value.astype(np.float32)
    return weights


def both_backends(specs, in_shape, dtype, seed=0):
    weights = random_weights(specs, in_shape, seed)
    net = Network(tuple(specs), in_shape, weights, rng=np.random.default_rng(0), dtype=dtype,
                  input_grad=True)
    module = build_module(tuple(specs), in_shape)
    load_canonical(module, weights)
    return net, module.to(torch.float64 if dtype == np.float64 else torch.float32)


def compare(specs, in_shape, training, n=4, tolerance=1e-5):
    """Both backends on the same weights and input.

    float32 outputs agree to 1e-5 (absolute, or relative to the output's size: a
    34-layer network accumulates float32 rounding differently in each library);
    float64 outputs and every gradient agree to 1e-8, i.e. the algorithms are the same.
    """
    x32 = np.random.default_rng(1).normal(size=(n, *in_shape)).astype(np.float32)
    net, module = both_backends(specs, in_shape, np.float32)
    module.train(training)
    with torch.no_grad():
        expected = module(torch.from_numpy(x32)).numpy()
    # relative to the output's size: AlexNet's outputs reach 9, and summing a 5x5x64
    # patch in another order (the shifted-slice kernel's (i, j, c)) moves one by 1e-5
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(net.forward(x32, training), expected,
                               atol=tolerance * scale, rtol=tolerance)

    net, module = both_backends(specs, in_shape, np.float64)
    module.train(training)
    x = x32.astype(np.float64)
    out = net.forward(x, training)
    upstream = np.random.default_rng(2).normal(size=out.shape)
    dx = net.backward(upstream)
    xt = torch.from_numpy(x).requires_grad_(True)
    out_torch = module(xt)
    np.testing.assert_allclose(out, out_torch.detach().numpy(), atol=1e-8, rtol=1e-8)
    (out_torch * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-8, rtol=1e-7)
    torch_grads = {k: p.grad.numpy() for k, p in module.named_parameters()}
    numpy_grads = {f"{layer.key}.{name}": g for layer in net.layers()
                   for name, g in layer.grads.items()}
    assert set(torch_grads) == set(numpy_grads)
    for key, grad in torch_grads.items():
        np.testing.assert_allclose(numpy_grads[key], grad, atol=1e-8, rtol=1e-7, err_msg=key)
    # training mode also updates BatchNorm running statistics identically
    torch_state = export_canonical(module)
    for key, value in net.get_weights().items():
        np.testing.assert_allclose(value, torch_state[key], atol=1e-6, err_msg=key)


PARITY_CASES = {k: v for k, v in GRADIENT_CASES.items() if k != "dropout"}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", PARITY_CASES)
def test_every_spec_type_gives_the_same_numbers(case, training):
    compare(*PARITY_CASES[case], training=training)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("arch", list_architectures())
def test_every_architecture_gives_the_same_numbers(arch, shape, training):
    specs, _ = build_architecture(arch, shape, n_classes=7)
    if training:  # dropout masks are random draws; their meaning is tested above
        specs = without_dropout(specs)
    # In training mode the deep ResNets on 8x8 images normalize 1x1 maps with batch
    # statistics 16 times over; each BatchNorm divides float32 rounding differences by
    # a small standard deviation, so float32 agreement there is 1e-4, not 1e-5 (float64
    # agreement stays at 1e-8: the computations are the same).
    deep = training and arch in ("resnet18", "resnet34") and shape[1] < 28
    compare(specs, shape, training, n=8, tolerance=1e-4 if deep else 1e-5)


def without_dropout(specs):
    return tuple(S.Dropout(0.0) if isinstance(spec, S.Dropout) else spec for spec in specs)


def test_dropout_means_the_same_in_both_backends():
    x = np.ones((4, 1, 50, 50), dtype=np.float32)
    net, module = both_backends([S.Dropout(0.3)], (1, 50, 50), np.float32)
    for out in (net.forward(x, True), module.train()(torch.from_numpy(x)).numpy()):
        kept = out != 0
        assert 0.66 < kept.mean() < 0.74
        np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(module.eval()(torch.from_numpy(x)).numpy(), x)


def test_weights_are_checked_when_loaded():
    module = build_module((S.Conv2d(2, 3), S.Flatten(), S.Linear(2)), (1, 5, 5))
    weights = export_canonical(module)
    weights["2.weight"] = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"2\.weight"):
        load_canonical(module, weights)
    del weights["2.weight"]
    with pytest.raises(ValueError, match="missing"):
        load_canonical(module, weights)


def test_digits_held_out_accuracy_with_defaults(digits):
    X_train, X_test, y_train, y_test = digits
    clf = CNNClassifier(backend="torch", random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.97
    assert clf.n_iter_ == 50 and len(clf.loss_curve_) == 50  # max_iter="auto"
    assert clf.t_ == 50 * len(X_train)
    # no hidden validation split: skorch trained on every sample
    assert clf.model_.train_split is None
    assert sum(clf.model_.history[-1, "batches", :, "train_batch_size"]) == len(X_train)


@pytest.mark.parametrize("solver,schedule", [("sgd", "constant"), ("adam", "constant"),
                                             ("adam", "onecycle"), ("sgd", "cosine"),
                                             ("sgd", "invscaling")])
def test_training_matches_the_numpy_backend_step_for_step(digits, solver, schedule):
    """Same initial weights, data order, solver, schedule and L2 penalty: same trained
    weights (the learning rate changes batch by batch in both backends alike)."""
    X_train, _, y_train, _ = digits
    params = dict(solver=solver, max_iter=3, shuffle=False, batch_size=100, alpha=0.1,
                  learning_rate=schedule, learning_rate_init=0.01 if solver == "sgd" else 0.001,
                  random_state=0)
    fits = {b: CNNClassifier("simple", backend=b, **params).fit(X_train[:300], y_train[:300])
            for b in ("numpy", "torch")}
    assert_trained_alike(fits["numpy"], fits["torch"])


def assert_trained_alike(numpy_fit, torch_fit):
    """The same loss curve and the same weights, up to float32 rounding."""
    np.testing.assert_allclose(numpy_fit.loss_curve_, torch_fit.loss_curve_, rtol=1e-4)
    numpy_weights, torch_weights = numpy_fit.get_weights(), torch_fit.get_weights()
    for key, value in numpy_weights.items():
        np.testing.assert_allclose(value, torch_weights[key], atol=2e-4, err_msg=key)


@pytest.mark.parametrize("arch", list_architectures())
def test_to_backend_round_trips_keep_predictions(arch, digits):
    X_train, X_test, y_train, _ = digits
    clf = CNNClassifier(arch, backend="torch", max_iter=2, random_state=0)
    clf.fit(X_train[:200], y_train[:200])
    as_numpy = clf.to_backend("numpy")
    back = as_numpy.to_backend("torch")
    assert as_numpy.backend == "numpy" and clf.backend == "torch"
    expected = clf.predict_proba(X_test)
    # across backends, float32 rounding through resnet18's 18 layers: measured up to
    # 1.2e-5 on one CPU (its oneDNN and BLAS kernels), so 1e-4; back on torch, the same
    # kernels on the same weights
    np.testing.assert_allclose(as_numpy.predict_proba(X_test), expected, atol=1e-4)
    np.testing.assert_allclose(back.predict_proba(X_test), expected, atol=1e-6)
    assert as_numpy.loss_curve_ == clf.loss_curve_


def test_batchnorm_statistics_travel_with_the_weights(digits):
    X_train, X_test, y_train, _ = digits
    arch = [S.Conv2d(8, 3, padding=1), S.BatchNorm(), S.ReLU(), S.GlobalAvgPool2d(),
            S.Linear(10)]
    clf = CNNClassifier(arch, backend="torch", max_iter=2, random_state=0)
    clf.fit(X_train[:300], y_train[:300])
    weights = clf.get_weights()
    assert not np.allclose(weights["1.running_mean"], 0)
    served = clf.to_backend("numpy")
    np.testing.assert_array_equal(served.get_weights()["1.running_var"],
                                  weights["1.running_var"])
    np.testing.assert_allclose(served.predict_proba(X_test), clf.predict_proba(X_test),
                               atol=1e-5)


def test_same_seed_same_result_and_string_labels(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:200], np.array(["even", "odd"])[y_train[:200] % 2]
    runs = [CNNClassifier(backend="torch", max_iter=2, random_state=3).fit(X, y)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].predict_proba(X), runs[1].predict_proba(X))
    assert set(runs[0].predict(X)) <= {"even", "odd"}
    other = CNNClassifier(backend="torch", max_iter=2, random_state=4).fit(X, y)
    assert not np.allclose(other.predict_proba(X), runs[0].predict_proba(X))


def test_both_backends_start_from_the_same_weights(digits):
    X_train, _, y_train, _ = digits
    kw = dict(max_iter=1, learning_rate_init=1e-12, random_state=5)
    a = CNNClassifier(backend="numpy", **kw).fit(X_train[:50], y_train[:50])
    b = CNNClassifier(backend="torch", **kw).fit(X_train[:50], y_train[:50])
    for key, value in a.get_weights().items():
        np.testing.assert_allclose(value, b.get_weights()[key], atol=1e-6)


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


def test_device_errors():
    X, y = np.zeros((4, 6, 6)), [0, 1, 0, 1]
    with pytest.raises(ValueError, match="CPU"):
        CNNClassifier(device="cuda").fit(X, y)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            CNNClassifier(backend="torch", device="cuda").fit(X, y)
    with pytest.raises(ValueError, match="not a torch device"):
        CNNClassifier(backend="torch", device="bogus").fit(X, y)
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="no MPS"):
            CNNClassifier(backend="torch", device="mps").fit(X, y)


def test_library_works_without_torch_and_names_the_extra():
    code = (
        "import sys\n"
        "class Absent:  # as if torch and skorch were not installed\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'skorch', 'torchvision'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import numpy as np\n"
        "from sklearn_cnn import CNNClassifier\n"
        "X, y = np.random.rand(20, 6, 6), np.arange(20) % 2\n"
        "CNNClassifier(max_iter=1).fit(X, y).predict(X)\n"
        "try:\n"
        "    CNNClassifier(backend='torch').fit(X, y)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'sklearn-cnn[torch]'" in out


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
    clf = CNNClassifier(TinyNet, backend="torch", max_iter=20, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.5
    assert clf.model_.module_.head.out_features == 10
    instance = TinyNet(n_classes=10)
    before = instance.conv.weight.detach().clone()
    fitted = CNNClassifier(instance, backend="torch", max_iter=2).fit(X_train, y_train)
    assert torch.equal(instance.conv.weight, before)  # the caller's module is untouched
    assert fitted.predict_proba(X_test).shape == (len(X_test), 10)
    with pytest.raises(ValueError, match=r"custom torch\.nn\.Module"):
        fitted.to_backend("numpy")
    with pytest.raises(ValueError, match=r"output \(n_samples, 3\)"):
        CNNClassifier(instance, backend="torch").fit(X_train[:30], y_train[:30] % 3)
    with pytest.raises(ValueError, match="needs backend='torch'"):
        CNNClassifier(TinyNet).fit(X_train, y_train)


@pytest.mark.parametrize("config", [{}, {"width": 0.5}, {"batch_norm": True},
                                    {"dropout": 0.3, "activation": "tanh"}], ids=str)
@pytest.mark.parametrize("arch", list_architectures())
def test_summary_counts_what_torch_counts(arch, config):
    from sklearn_cnn import summary

    for shape in [(3, 32, 32), (1, 8, 8)]:
        specs, _ = build_architecture(arch, shape, 10, **config)
        module = build_module(specs, shape)
        assert summary(arch, shape, 10, **config).total_params == \
            sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("loss", ["squared_error", "huber", "absolute_error"])
def test_regression_trains_like_the_numpy_backend(digits, loss):
    """The regression losses mean the same in both backends: same weights after the
    same steps, sample weights included."""
    X_train, _, y_train, _ = digits
    X, y = X_train[:300], np.column_stack([y_train[:300], y_train[:300] ** 2])
    weights = np.linspace(0.5, 2.0, 300)
    params = dict(max_iter=3, shuffle=False, batch_size=100, alpha=0.1, loss=loss,
                  learning_rate="constant", learning_rate_init=0.001, random_state=0)
    fits = {b: CNNRegressor("simple", backend=b, **params).fit(X, y, sample_weight=weights)
            for b in ("numpy", "torch")}
    assert_trained_alike(fits["numpy"], fits["torch"])


class TinyRegressor(torch.nn.Module):
    def __init__(self, n_outputs, in_channels):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 4, 3)
        self.head = torch.nn.LazyLinear(n_outputs)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_custom_torch_module_regresses(digits):
    X_train, X_test, y_train, y_test = digits
    reg = CNNRegressor(TinyRegressor, backend="torch", max_iter=20, random_state=0)
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
    params = dict(arch="lenet", backend="torch", max_iter=1, random_state=0)
    monkeypatch.setattr(torch_backend, "cpu_has_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="emulates bfloat16"):
        clf = CNNClassifier(mixed_precision="bfloat16", **params).fit(X_train, y_train)
    assert clf.n_iter_ == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CNNClassifier(**params).fit(X_train, y_train)
        monkeypatch.setattr(torch_backend, "cpu_has_bfloat16", lambda: True)
        CNNClassifier(mixed_precision="bfloat16", **params).fit(X_train, y_train)
    assert not [w for w in caught if "bfloat16" in str(w.message)]
