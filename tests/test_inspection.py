"""Saliency, Grad-CAM and occlusion: correct gradients, both backends alike, and the
sanity checks of Adebayo et al. (2018)."""

import copy

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from sklearn_cnn import CNNClassifier, CNNRegressor, list_architectures
from sklearn_cnn import layers as S
from sklearn_cnn._weights import init_weights
from sklearn_cnn.architectures import architecture_parameters
from sklearn_cnn.backends import get_backend
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.inspection import (
    default_cam_layer,
    grad_cam,
    input_gradient,
    occlusion,
    saliency,
    upsample,
)

METHODS = {"saliency": saliency, "grad_cam": grad_cam, "occlusion": occlusion}


def marks(n: int, seed: int, side: int = 16):
    """Noise images whose class is the orientation of a 3-pixel bar at a random place
    (0: horizontal, 1: vertical); also returns the bar's centre."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.15, (n, 1, side, side)).astype(np.float32)
    y = rng.integers(0, 2, n)
    rows, cols = rng.integers(2, side - 2, n), rng.integers(2, side - 2, n)
    for step in (-1, 0, 1):
        X[np.arange(n), 0, rows + step * (y == 1), cols + step * (y == 0)] += 1.0
    return X, y, rows, cols


@pytest.fixture(scope="module")
def mark_task():
    X, y, _, _ = marks(1500, seed=0)
    X_test, y_test, rows, cols = marks(200, seed=1)
    clf = CNNClassifier(max_iter=10, random_state=0).fit(X, y)
    assert clf.score(X_test, y_test) > 0.98
    return clf, X, y, X_test, rows, cols


def distance_to_mark(shape, rows, cols):
    """Chessboard distance of every pixel to each image's mark centre, (n, H, W)."""
    r, c = np.indices(shape)
    return np.maximum(abs(r[None] - rows[:, None, None]), abs(c[None] - cols[:, None, None]))


def peaks_on_mark(maps, rows, cols, within: int = 2) -> float:
    """Share of maps whose largest value is within ``within`` pixels of the mark."""
    distance = distance_to_mark(maps.shape[1:], rows, cols)
    peak = maps.reshape(len(maps), -1).argmax(axis=1)
    return float(np.mean(distance.reshape(len(maps), -1)[np.arange(len(maps)), peak] <= within))


def similarity(maps_a, maps_b) -> float:
    """Mean Spearman rank correlation of paired maps (a constant map counts as 0)."""
    values = []
    for a, b in zip(maps_a, maps_b, strict=True):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            values.append(0.0)
            continue
        values.append(spearmanr(a.ravel(), b.ravel())[0])
    return float(np.mean(values))


def test_input_gradient_matches_finite_differences():
    X, y = load_digits_images(return_X_y=True)
    X = X.astype(np.float64)  # a float64 network: differences of 1e-6 are exact enough
    clf = CNNClassifier("lenet", activation="tanh", pooling="avg", max_iter=2,
                        random_state=0).fit(X[:300], y[:300])
    gradient = input_gradient(clf, X[:3], target=[1, 4, 7])
    rng = np.random.default_rng(0)
    for image, label in zip(range(3), [1, 4, 7], strict=True):
        for row, col in rng.integers(0, 8, (6, 2)):
            step = np.zeros_like(X[:1])
            step[0, 0, row, col] = 1e-6
            logits = [clf.network_.outputs(clf.network_.images(X[image:image + 1] + s))[0, label]
                      for s in (step, -step)]
            numeric = (logits[0] - logits[1]) / 2e-6
            assert gradient[image, 0, row, col] == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    np.testing.assert_array_equal(saliency(clf, X[:3], target=[1, 4, 7]),
                                  np.abs(gradient).max(axis=1))


def test_maps_point_at_the_mark(mark_task):
    clf, _, _, X_test, rows, cols = mark_task
    distance = distance_to_mark(X_test.shape[2:], rows, cols)
    sal = saliency(clf, X_test)
    assert peaks_on_mark(sal, rows, cols) > 0.8
    # per pixel, the mark draws several times the saliency of the background
    on_mark, background = sal[distance == 0].mean(), sal[distance >= 3].mean()
    assert on_mark > 4 * background
    assert peaks_on_mark(grad_cam(clf, X_test), rows, cols) > 0.9
    occluded = occlusion(clf, X_test)
    assert peaks_on_mark(occluded, rows, cols) > 0.9
    inside = np.where(distance <= 2, np.maximum(occluded, 0), 0).sum(axis=(1, 2))
    assert np.median(inside / np.maximum(occluded, 0).sum(axis=(1, 2))) > 0.5


def mass_near_mark(maps, rows, cols, within: int = 2) -> float:
    """Median share of a map's mass within ``within`` pixels of the mark."""
    near = distance_to_mark(maps.shape[1:], rows, cols) <= within
    return float(np.median(np.where(near, maps, 0).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))))


#: the natural network for a mark anywhere: convolutions and a global pool (no
#: position-specific dense weights that draw gradient from every background pixel)
EQUIVARIANT_SPECS = [S.Conv2d(32, 3, padding="same", bias=False), S.BatchNorm(), S.ReLU(),
                     S.MaxPool2d(2), S.Conv2d(64, 3, padding="same", bias=False),
                     S.BatchNorm(), S.ReLU(), S.GlobalAvgPool2d(), S.Linear(2)]


def test_saliency_variants_concentrate_on_the_mark(mark_task):
    """The plain gradient is spread over the noise background (a fifth of its mass on
    the 5x5 pixels around the bar); SmoothGrad steadies its peak and input x gradient
    puts most of the mass on the bar, on a convolutional network with a global pool."""
    clf, X, y, X_test, rows, cols = mark_task
    plain = saliency(clf, X_test)
    smooth = saliency(clf, X_test, smooth=20, noise=0.15, random_state=0)
    assert peaks_on_mark(smooth, rows, cols) > max(0.95, peaks_on_mark(plain, rows, cols))
    assert mass_near_mark(plain, rows, cols) < 0.3
    assert mass_near_mark(saliency(clf, X_test, times_input=True), rows, cols) \
        > mass_near_mark(plain, rows, cols) + 0.15
    equivariant = CNNClassifier(EQUIVARIANT_SPECS, max_iter=10, random_state=0).fit(X, y)
    assert mass_near_mark(saliency(equivariant, X_test, times_input=True), rows, cols) > 0.5


def test_saliency_variants_by_hand():
    clf, X = zoo_case("lenet")
    gradient = input_gradient(clf, X[:3], target=1)
    np.testing.assert_allclose(saliency(clf, X[:3], target=1, times_input=True),
                               np.abs((gradient * X[:3]).sum(axis=1)), rtol=1e-6)
    # SmoothGrad: the mean gradient over noisy copies, seeded; the target stays the
    # clean image's prediction
    noisy = [saliency(clf, X[:3], smooth=4, random_state=7) for _ in range(2)]
    np.testing.assert_array_equal(*noisy)
    rng = np.random.RandomState(7)
    scale = np.ptp(X[:3], axis=(1, 2, 3), keepdims=True) * 0.15
    target = clf.predict(X[:3])
    mean = sum(input_gradient(clf, X[:3] + (rng.standard_normal(X[:3].shape) * scale)
                              .astype(X.dtype), target=target) for _ in range(4)) / 4
    np.testing.assert_allclose(noisy[0], np.abs(mean).max(axis=1), rtol=1e-5, atol=1e-7)
    assert not np.allclose(noisy[0], saliency(clf, X[:3]))
    for bad, match in ((dict(smooth=-1), "smooth must be a non-negative int"),
                       (dict(smooth=2.5), "smooth must be a non-negative int"),
                       (dict(noise=0), "noise must be a positive float"),
                       (dict(noise=float("nan")), "noise must be a positive float")):
        with pytest.raises(ValueError, match=match):
            saliency(clf, X[:3], **bad)
    with pytest.raises(TypeError, match="times_input must be True or False"):
        saliency(clf, X[:3], times_input="yes")


def test_sanity_checks_of_adebayo_et_al(mark_task):
    """Maps must depend on what the model learned: re-drawn random weights and a model
    trained on shuffled labels give maps unlike the trained model's, while a model
    trained again from another seed gives similar ones."""
    clf, X, y, X_test, _, _ = mark_task
    randomized = copy.deepcopy(clf)
    get_backend("numpy").set_weights(randomized.model_, init_weights(
        clf.specs_, clf.input_shape_, np.random.default_rng(123)))
    shuffled = CNNClassifier(max_iter=10, random_state=0).fit(
        X, np.random.default_rng(5).permutation(y))
    retrained = CNNClassifier(max_iter=10, random_state=1).fit(X, y)
    for method in (saliency, grad_cam):
        maps = method(clf, X_test)
        same_task = similarity(maps, method(retrained, X_test))
        for other in (randomized, shuffled):
            unlike = similarity(maps, method(other, X_test))
            assert unlike < 0.2 and unlike < same_task - 0.1, method.__name__


def zoo_case(arch, dtype=np.float32):
    """A tiny fitted classifier of ``arch`` on 3x16x16 images, narrow where it can be
    (its model computes in ``dtype``, the images' dtype)."""
    rng = np.random.default_rng(0)
    X, y = rng.random((8, 3, 16, 16)).astype(dtype), np.arange(8) % 2
    narrow = {"width": 0.25} if "width" in architecture_parameters(arch) else {}
    return CNNClassifier(arch, max_iter=1, random_state=0, **narrow).fit(X, y), X


RESIDUAL_SPECS = [S.Conv2d(4, 3, padding=1), S.ReLU(),
                  S.Residual(body=(S.Conv2d(4, 3, padding=1), S.BatchNorm(), S.ReLU(),
                                   S.Conv2d(4, 3, padding=1)),
                             shortcut=()),
                  S.ReLU(), S.GlobalAvgPool2d(), S.Linear(2)]


@pytest.mark.parametrize("arch", [*list_architectures(), "residual spec list"])
def test_every_architecture_on_both_backends(arch, backend):
    if arch == "residual spec list":
        X = np.random.default_rng(0).random((8, 3, 16, 16)).astype(np.float32)
        clf = CNNClassifier(RESIDUAL_SPECS, max_iter=1, random_state=0).fit(X, np.arange(8) % 2)
    else:
        clf, X = zoo_case(arch)
    clf = clf.to_backend(backend)
    maps = {name: method(clf, X[:3]) for name, method in METHODS.items()}
    for name, values in maps.items():
        assert values.shape == (3, 16, 16) and np.isfinite(values).all(), name
    assert (maps["saliency"] >= 0).all() and (maps["grad_cam"] >= 0).all()
    if backend == "torch":  # the same weights on NumPy: the same maps
        numpy_clf = clf.to_backend("numpy")
        for name, method in METHODS.items():
            expected = method(numpy_clf, X[:3])
            scale = max(np.abs(expected).max(), 1e-30)
            assert np.abs(maps[name] - expected).max() <= 1e-4 * scale, name
        # SmoothGrad's noisy copies are points no training saw: a pre-activation there
        # can sit within float32 rounding of a ReLU's kink (1e-6 on ResNet34), and the
        # two backends' float32 sums may then take opposite sides (a 1 % jump). In
        # float64 both backends must agree to rounding, kinks or not.
        if arch == "residual spec list":
            X64 = X.astype(np.float64)
            clf64 = CNNClassifier(RESIDUAL_SPECS, max_iter=1, random_state=0).fit(
                X64, np.arange(8) % 2)
        else:
            clf64, X64 = zoo_case(arch, dtype=np.float64)
        for options in (dict(times_input=True), dict(smooth=2, random_state=0)):
            ours, theirs = (saliency(clf64.to_backend(name), X64[:3], **options)
                            for name in ("torch", "numpy"))
            assert ours.dtype == theirs.dtype == np.float64
            assert np.abs(ours - theirs).max() <= 1e-9 * max(np.abs(theirs).max(), 1e-30)


def test_regressor_maps_and_targets():
    X, y = load_digits_images(return_X_y=True)
    reg = CNNRegressor(max_iter=2, random_state=0).fit(X[:300], y[:300].astype(float))
    for method in METHODS.values():
        assert method(reg, X[:4]).shape == (4, 8, 8)
    two = CNNRegressor(max_iter=1, random_state=0).fit(X[:300], np.c_[y[:300], -y[:300]])
    with pytest.raises(ValueError, match="2 outputs; pass the one to explain"):
        saliency(two, X[:2])
    # the second output is minus the first's target: its gradient points the other way
    first, second = (input_gradient(two, X[:2], target=k) for k in (0, 1))
    assert first.shape == second.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"output index in \[0, 2\)"):
        saliency(two, X[:2], target=2)


def test_targets_of_a_classifier():
    X, y = load_digits_images(return_X_y=True)
    names = np.array(list("abcdefghij"))[y]
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:300], names[:300])
    np.testing.assert_array_equal(saliency(clf, X[:3], target="c"),
                                  saliency(clf, X[:3], target=["c", "c", "c"]))
    np.testing.assert_array_equal(saliency(clf, X[:3]),
                                  saliency(clf, X[:3], target=clf.predict(X[:3])))
    with pytest.raises(ValueError, match="'z' is not a class"):
        saliency(clf, X[:3], target="z")
    with pytest.raises(ValueError, match=r"one per image \(3\)"):
        saliency(clf, X[:3], target=["a", "b"])


def test_grad_cam_layer_choice_and_upsampling():
    clf, X = zoo_case("lenet")
    assert default_cam_layer(clf.specs_) == 4  # conv 3 and its ReLU, before pooling
    np.testing.assert_array_equal(grad_cam(clf, X[:2]), grad_cam(clf, X[:2], layer=4))
    assert grad_cam(clf, X[:2], layer=0).shape == (2, 16, 16)
    with pytest.raises(ValueError, match="layer must be the index of a top-level layer"):
        grad_cam(clf, X[:2], layer=8)  # Flatten: no map
    ramp = np.arange(4.0).reshape(1, 2, 2)
    up = upsample(ramp, (4, 4))
    assert up.shape == (1, 4, 4) and up[0, 0, 0] == 0 and up[0, -1, -1] == 3
    np.testing.assert_allclose(up.mean(), ramp.mean())


def test_occlusion_by_hand():
    """One patch over the whole image: every pixel's drop is the score lost to an
    all-grey image."""
    clf, X = zoo_case("lenet")
    whole = occlusion(clf, X[:2], window=16, target=1)
    grey = np.broadcast_to(X[:2].mean(axis=(2, 3), keepdims=True), X[:2].shape)
    network = clf.network_
    outputs = network.outputs(network.images(X[:2]))
    greyed = network.outputs(network.images(np.ascontiguousarray(grey)))
    np.testing.assert_allclose(whole, np.broadcast_to(
        (outputs[:, 1] - greyed[:, 1])[:, None, None], (2, 16, 16)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="larger than the images"):
        occlusion(clf, X[:2], window=17)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        occlusion(clf, X[:2], stride=0)


def test_bad_estimators_and_images():
    X, y = load_digits_images(return_X_y=True)
    with pytest.raises(TypeError, match="explains a fitted CNNClassifier or CNNRegressor"):
        saliency(LogisticRegression().fit(X[:50].reshape(50, -1), y[:50]), X[:2])
    with pytest.raises(NotFittedError):
        grad_cam(CNNClassifier(), X[:2])
    clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="fitted on images of shape"):
        occlusion(clf, np.zeros((2, 1, 9, 9)))


def test_custom_torch_module_has_saliency_but_no_layers():
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self, n_classes):
            super().__init__()
            self.head = torch.nn.Linear(64, n_classes)

        def forward(self, x):
            return self.head(x.flatten(1))

    X, y = load_digits_images(return_X_y=True)
    clf = CNNClassifier(Tiny, backend="torch", max_iter=1, random_state=0).fit(X[:100], y[:100])
    assert saliency(clf, X[:2]).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="grad_cam needs an architecture made of"):
        grad_cam(clf, X[:2])


def test_occlusion_refuses_a_stride_that_leaves_pixels_uncovered():
    clf, X = zoo_case("lenet")
    with pytest.raises(ValueError, match="stride=3 is larger than window=2"):
        occlusion(clf, X[:1], window=2, stride=3)
    assert np.isfinite(occlusion(clf, X[:1], window=3, stride=3)).all()
