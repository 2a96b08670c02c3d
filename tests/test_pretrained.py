"""Transfer learning from torchvision's ImageNet weights, with weights files the tests
write themselves in torchvision's format (nothing is downloaded)."""

import os
import pickle
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from sklearn_cnn import CNNClassifier  # noqa: E402
from sklearn_cnn._weights import init_weights, weight_shapes  # noqa: E402
from sklearn_cnn.architectures import build_architecture  # noqa: E402
from sklearn_cnn.backends import get_backend  # noqa: E402
from sklearn_cnn.pretrained import (  # noqa: E402
    hub_weights_path,
    load_pretrained,
    read_state_dict,
)

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    # move BatchNorm away from its trivial start so running statistics matter
    for name, buffer in model.named_buffers():
        if name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
        elif name.endswith("running_mean"):
            buffer.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("weights") / "resnet18-f37072fd.pth"
    torch.save(model.state_dict(), path)
    return path, model.eval()


@pytest.mark.parametrize("name,params", [("resnet18", {}), ("resnet34", {}), ("vgg11", {}),
                                         ("vgg16", {}), ("alexnet", {}),
                                         ("vgg11", {"batch_norm": True})])
def test_imagenet_forms_have_torchvisions_arrays_in_order(name, params):
    torchvision_name = name + ("_bn" if params else "")
    with torch.device("meta"):  # shapes only: no memory for VGG's 130 M parameters
        state = getattr(torchvision.models, torchvision_name)(weights=None).state_dict()
    state = {k: tuple(v.shape) for k, v in state.items() if "num_batches" not in k}
    specs, notes = build_architecture(name, (3, 224, 224), 1000, imagenet=True, **params)
    ours = weight_shapes(specs, (3, 224, 224))
    assert notes == []
    assert list(ours.values()) == list(state.values())
    assert [k.rsplit(".", 1)[1] for k in ours] == [k.rsplit(".", 1)[1] for k in state]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("channels", [3, 1])
def test_loaded_resnet18_computes_what_torchvision_computes(resnet18_file, backend, channels):
    path, reference = resnet18_file
    shape = (channels, 32, 32)
    specs, _ = build_architecture("resnet18", shape, 1000, imagenet=True)
    weights = init_weights(specs, shape, np.random.default_rng(0))
    loaded, notes = load_pretrained("resnet18", specs, shape, weights=path)
    weights.update(loaded)
    assert len(loaded) == len(weights)  # 1000 classes: the head fits too
    assert any("grayscale" in note for note in notes) == (channels == 1)
    model = get_backend(backend).build(specs, shape, weights, dtype=np.float32)
    x = RNG.random((3, *shape), dtype=np.float32)
    with torch.no_grad():  # grayscale: torchvision sees the image repeated to RGB
        expected = reference(torch.from_numpy(x).expand(-1, 3, -1, -1)).softmax(1).numpy()
    np.testing.assert_allclose(get_backend(backend).predict_proba(model, x), expected,
                               atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pretrained_classifier_keeps_frozen_features_and_replaces_the_head(resnet18_file,
                                                                           backend):
    path, reference = resnet18_file
    X = RNG.random((24, 28, 28), dtype=np.float32)  # grayscale, smaller than ImageNet's
    y = np.arange(24) % 4
    clf = CNNClassifier("resnet18", backend=backend, init_from=path, freeze="features",
                        max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    weights, state = clf.get_weights(), reference.state_dict()
    np.testing.assert_array_equal(weights["0.weight"],
                                  state["conv1.weight"].numpy().sum(1, keepdims=True))
    np.testing.assert_array_equal(weights["8.body.0.weight"],
                                  state["layer2.0.conv1.weight"].numpy())
    assert weights["21.weight"].shape == (4, 512)  # a new head for the 4 classes
    assert "pretrained: 100 of 102 arrays" in str(clf.summary())
    assert clf.predict_proba(X).shape == (24, 4)


def test_pretrained_weights_are_found_in_the_torch_hub_cache(resnet18_file, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = hub_weights_path("resnet18")
    assert expected == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    X, y = RNG.random((8, 3, 32, 32), dtype=np.float32), np.arange(8) % 2
    clf = CNNClassifier("resnet18", backend="torch", init_from="imagenet",
                        freeze="features", max_iter=1)
    with pytest.raises(FileNotFoundError, match=r"(?s)not found at .*resnet18-f37072fd\.pth"
                       r".*torchvision\.models\.resnet18\(weights='DEFAULT'\)"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")
    expected.parent.mkdir(parents=True)
    expected.write_bytes(resnet18_file[0].read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.get_weights()["0.weight"],
                                  resnet18_file[1].state_dict()["conv1.weight"].numpy())


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_weights_files_are_read_as_tensors_only(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "hook": _RunsCode()}, evil)
    with pytest.raises(ValueError, match="weights_only=True"):
        read_state_dict(evil)
    truncated = tmp_path / "truncated.pth"
    torch.save({"w": torch.zeros(100)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="Cannot read"):
        read_state_dict(truncated)
    plain = tmp_path / "plain.pth"
    with plain.open("wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(ValueError):
        read_state_dict(plain)


def test_a_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    X, y = RNG.random((8, 3, 64, 64), dtype=np.float32), np.arange(8) % 2
    with pytest.raises(ValueError, match="not a file of this architecture"):
        CNNClassifier("resnet18", init_from=path, max_iter=1).fit(X, y)


def test_alexnet_and_checkpoint_dicts_load(tmp_path):
    model = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    shape = (3, 64, 64)
    specs, _ = build_architecture("alexnet", shape, 1000, imagenet=True)
    loaded, _ = load_pretrained("alexnet", specs, shape, weights=path)
    network = get_backend("numpy").build(specs, shape, loaded)
    x = RNG.random((2, *shape), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).softmax(1).numpy()
    np.testing.assert_allclose(get_backend("numpy").predict_proba(network, x), expected,
                               atol=1e-5)


def test_pretrained_needs_an_architecture_with_weights():
    X, y = RNG.random((8, 1, 28, 28), dtype=np.float32), np.arange(8) % 2
    with pytest.raises(ValueError, match=r"pretrained weights exist for arch in"):
        CNNClassifier("lenet", init_from="imagenet").fit(X, y)


@pytest.mark.parametrize("old, new", [({"pretrained": True}, "init_from='imagenet'"),
                                      ({"weights": "PATH"}, "init_from='")])
def test_pretrained_and_weights_still_work_with_a_future_warning(resnet18_file, tmp_path,
                                                                  monkeypatch, old, new):
    path, _ = resnet18_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = hub_weights_path("resnet18")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    old = {name: path if value == "PATH" else value for name, value in old.items()}
    X, y = RNG.random((8, 3, 32, 32), dtype=np.float32), np.arange(8) % 2
    clf = CNNClassifier("resnet18", freeze="features", max_iter=1, random_state=0, **old)
    with pytest.warns(FutureWarning, match=re.escape(new)):
        clf.fit(X, y)
    same = CNNClassifier("resnet18", freeze="features", max_iter=1, random_state=0,
                         init_from="imagenet").fit(X, y)
    np.testing.assert_array_equal(clf.get_weights()["0.weight"],
                                  same.get_weights()["0.weight"])
