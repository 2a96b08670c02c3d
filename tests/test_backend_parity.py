"""The two backends side by side: same specs, same weights, same numbers, same training."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from backends.spec_cases import GRADIENT_CASES  # noqa: E402

from sklearn_cnn import CNNClassifier, CNNRegressor, list_architectures  # noqa: E402
from sklearn_cnn import layers as S  # noqa: E402
from sklearn_cnn._weights import init_weights, walk  # noqa: E402
from sklearn_cnn.architectures import build_architecture  # noqa: E402
from sklearn_cnn.backends.numpy import Network  # noqa: E402
from sklearn_cnn.backends.torch import build_module, export_canonical, load_canonical  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

#: architectures made of exactly the layers of another, smaller one (more blocks or
#: more convolutions of the same kinds): parity on the smaller one covers them (see
#: test_the_architectures_left_out_have_no_layer_of_their_own)
SAME_LAYERS_AS = {"resnet34": "resnet18", "vgg16": "vgg11"}
PARITY_ARCHS = [arch for arch in list_architectures() if arch not in SAME_LAYERS_AS]
#: the wide networks, narrowed: every layer kind is kept, and the NumPy backend still
#: picks both of its convolution kernels (see test_narrowed_networks_keep_both_kernels)
WIDTH = {"alexnet": 0.25, "vgg11": 0.25, "resnet18": 0.25}


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
    deep network accumulates float32 rounding differently in each library);
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


def layer_kinds(specs, shape):
    """Every (spec type, its settings but the widths) in a network, blocks entered."""
    kinds = set()
    for _, spec, _, _ in walk(tuple(specs), shape):
        settings = {k: v for k, v in vars(spec).items()
                    if k not in ("out_channels", "out_features", "body", "shortcut")}
        if isinstance(spec, S.Residual):
            settings["projection"] = bool(spec.shortcut)
        kinds.add((type(spec).__name__, tuple(sorted(settings.items()))))
    return kinds


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("arch", sorted(SAME_LAYERS_AS))
def test_the_architectures_left_out_have_no_layer_of_their_own(arch, shape):
    smaller = SAME_LAYERS_AS[arch]
    assert layer_kinds(build_architecture(arch, shape, 7)[0], shape) == \
        layer_kinds(build_architecture(smaller, shape, 7)[0], shape)


def test_narrowed_networks_keep_both_kernels():
    from sklearn_cnn.backends.numpy import layers as L

    kernels = set()
    for arch, width in WIDTH.items():
        for shape in [(1, 8, 8), (1, 28, 28), (3, 32, 32)]:
            specs, _ = build_architecture(arch, shape, 7, width=width)
            net = Network(specs, shape, init_weights(specs, shape, np.random.default_rng(0)))
            kernels |= {type(layer) for layer in net.layers()}
    assert {L.Conv2d, L.ShiftedConv2d} <= kernels


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("arch", PARITY_ARCHS)
def test_every_architecture_gives_the_same_numbers(arch, shape, training):
    specs, _ = build_architecture(arch, shape, n_classes=7, width=WIDTH.get(arch, 1.0))
    if training:  # dropout masks are random draws; their meaning is tested below
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


@pytest.mark.parametrize("arch", PARITY_ARCHS)
def test_to_backend_round_trips_keep_predictions(arch, digits):
    X_train, X_test, y_train, _ = digits
    clf = CNNClassifier(arch, backend="torch", max_iter=2, random_state=0,
                        width=WIDTH.get(arch, 1.0))
    clf.fit(X_train[:100], y_train[:100])
    as_numpy = clf.to_backend("numpy")
    back = as_numpy.to_backend("torch")
    assert as_numpy.backend == "numpy" and clf.backend == "torch"
    X = X_test[:100]
    expected = clf.predict_proba(X)
    # across backends, float32 rounding through resnet18's 18 layers: measured up to
    # 1.2e-5 on one CPU (its oneDNN and BLAS kernels), so 1e-4; back on torch, the same
    # kernels on the same weights
    np.testing.assert_allclose(as_numpy.predict_proba(X), expected, atol=1e-4)
    np.testing.assert_allclose(back.predict_proba(X), expected, atol=1e-6)
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
