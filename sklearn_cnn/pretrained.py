"""Transfer learning: torchvision's ImageNet weights as canonical weights.

A network trained on a million ImageNet photographs has learned edge, texture and
shape detectors that help on other images too; fine-tuning it usually beats training
from scratch when data is scarce. ``CNNClassifier(arch="resnet18", init_from="imagenet")``
builds torchvision's exact ImageNet network (``imagenet=True``) and fills it with the
weights torchvision publishes:

- the file is looked for in the torch hub cache (where
  ``torchvision.models.resnet18(weights="DEFAULT")`` saves it), or read from
  ``init_from="path/to/file.pth"``; nothing is downloaded here;
- it is read with ``torch.load(..., weights_only=True)``: tensors only, never
  pickled code;
- its arrays are paired with the network's canonical keys in order (torchvision
  registers its modules in the order the specs list them), checking every name;
- arrays whose shape differs keep their fresh initialisation: the 1000-class
  ImageNet head is replaced by one for ``n_classes``;
- for one-channel (grayscale) images the first convolution's kernel is summed over
  its three input channels. A convolution of an image repeated into 3 channels is
  exactly the convolution of the one channel with that sum, so this *is* repeating
  the image to RGB, without tripling the input.

The weights expect images scaled to [0, 1] and normalised per channel with
ImageNet's means (0.485, 0.456, 0.406) and standard deviations (0.229, 0.224, 0.225).
Only reading the file needs torch; the network can then train on either backend.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ._weights import weight_shapes
from .layers import LayerSpec, Shape

#: architectures with torchvision ImageNet weights; VGG with ``batch_norm=True``
#: loads the ``_bn`` variant.
PRETRAINED_ARCHS = ("alexnet", "resnet18", "resnet34", "vgg11", "vgg16")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torchvision_name(arch: str, batch_norm: bool | None = None) -> str:
    """torchvision's model name for ``arch``: ``"vgg11_bn"`` for VGG with BatchNorm."""
    if arch not in PRETRAINED_ARCHS:
        raise ValueError(f"pretrained weights exist for arch in {list(PRETRAINED_ARCHS)}, "
                         f"got arch={arch!r}")
    return f"{arch}_bn" if batch_norm and arch.startswith("vgg") else arch


def hub_weights_path(name: str) -> Path:
    """Where torchvision keeps the ImageNet weights of model ``name`` once downloaded:
    ``<torch hub dir>/checkpoints/<file name of torchvision's URL>``."""
    torch, torchvision = _import_torchvision()
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A torchvision-format weights file as ``{name: float32 array}``.

    Read with ``torch.load(weights_only=True)``: a file holding anything but tensors
    and plain containers (a pickled object that would run code) is refused. Also
    accepts a checkpoint dict that nests the weights under ``"state_dict"`` or
    ``"model"``. BatchNorm's ``num_batches_tracked`` counters are dropped.
    """
    torch, _ = _import_torchvision()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"Refusing to load {path}: it holds more than tensors (a pickled "
                         "object that could run code), and weights are only read with "
                         f"torch.load(weights_only=True). ({str(error).splitlines()[0]})"
                         ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"Cannot read {path} as a PyTorch weights file (truncated or not "
                         f"a torch.save file?): {error}") from None
    if isinstance(state, dict):
        state = state.get("state_dict", state.get("model", state))
    if not (isinstance(state, dict) and state
            and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ValueError(f"{path} does not hold a state_dict (a dict of tensors)")
    return {key: value.detach().float().numpy() for key, value in state.items()
            if not key.endswith("num_batches_tracked")}


def pretrained_weights(state: dict[str, np.ndarray], specs: tuple[LayerSpec, ...],
                       input_shape: Shape, source: str = "the weights file"
                       ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Canonical weights for ``specs`` taken from a torchvision ``state`` dict.

    Returns ``(weights, notes)``: the arrays that fit, by canonical key, and a note
    for each layer that keeps its fresh initialisation (a different shape, such as
    the classifier head) or that was adapted to grayscale input.

    Raises
    ------
    ValueError
        If the file does not describe the same layers (count or kind of arrays).
    """
    ours = weight_shapes(specs, input_shape)
    if len(state) != len(ours):
        raise ValueError(f"{source} holds {len(state)} arrays but the network has "
                         f"{len(ours)}: it is not a file of this architecture")
    weights, notes, fresh = {}, [], []
    first_conv = next((k for k, s in ours.items() if len(s) == 4), None)
    for (key, shape), (their_key, value) in zip(ours.items(), state.items(), strict=True):
        if key.rsplit(".", 1)[1] != their_key.rsplit(".", 1)[1]:
            raise ValueError(f"{source}: {their_key!r} does not pair with {key!r}; it is "
                             "not a file of this architecture")
        if value.shape == shape:
            weights[key] = value
        elif (key == first_conv and shape[1] == 1 and value.shape[1] == 3
              and value.shape[2:] == shape[2:] and value.shape[0] == shape[0]):
            # conv(repeat(x, 3), W) == conv(x, W.sum over input channels)
            weights[key] = value.sum(axis=1, keepdims=True)
            notes.append(f"grayscale input: {their_key} summed over its 3 input channels "
                         "(the same as repeating the image to RGB)")
        else:
            fresh.append(f"{key} {shape} (file: {their_key} {value.shape})")
    if fresh:
        notes.append(f"freshly initialised, shapes differ from {source}: "
                     + "; ".join(fresh))
    return weights, notes


def load_pretrained(arch: str, specs: tuple[LayerSpec, ...], input_shape: Shape,
                    weights: str | os.PathLike | None = None, batch_norm: bool | None = None
                    ) -> tuple[dict[str, np.ndarray], list[str]]:
    """ImageNet weights for ``arch`` from ``weights`` or the torch hub cache, as
    canonical arrays that fit ``specs`` (see :func:`pretrained_weights`).

    Raises
    ------
    FileNotFoundError
        If no file is found: the message says where it was looked for and how to get
        it (nothing is downloaded here).
    """
    name = torchvision_name(arch, batch_norm)
    path = Path(weights) if weights is not None else hub_weights_path(name)
    if not path.is_file():
        how = ("pass init_from= the path of a torchvision state_dict file"
               if weights is not None else
               f"download them once with torchvision.models.{name}(weights='DEFAULT') "
               "(saved to that cache; set TORCH_HOME to move it), or pass "
               f"init_from='path/to/{path.name}'")
        raise FileNotFoundError(f"Pretrained {name} weights not found at {path}; {how}")
    state = read_state_dict(path)
    loaded, notes = pretrained_weights(state, specs, input_shape, source=str(path))
    return loaded, [f"pretrained: {len(loaded)} of {len(state)} arrays from {path}", *notes]


def _import_torchvision():
    try:
        import torch
        import torchvision
    except ImportError as error:
        raise ImportError("Pretrained weights are torchvision files; reading them needs "
                          "torch and torchvision: pip install 'sklearn-cnn[torch]' (in a "
                          "clone of the repository: pip install -e '.[torch]')") from error
    return torch, torchvision
