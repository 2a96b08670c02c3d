"""The model file's format: layout, checksum, atomic write. Imports no estimator.

A model file is one ``.npz`` archive of plain arrays, read with
``allow_pickle=False``:

- ``meta``: a JSON document (UTF-8 bytes as uint8): the format name, the
  estimator's class name and parameters, the network (backend, specs, input shape,
  dtype, notes) and every fitted attribute that is not an array;
- ``weights/<key>``: the canonical weights;
- ``fitted/<name>``: the fitted attributes that are arrays (``classes_``,
  ``feature_names_in_``, a regressor's standardization); object arrays of strings,
  numbers or bools are stored typed and listed in ``meta["object_arrays"]``;
- ``checksum``: SHA-256 of all of the above, so a file changed anywhere, even where
  it still parses, is refused.

Files of the three earlier formats (before the fitted state was stored whole, before
the regressor, before the checksum) are still read: :func:`read_model` turns their
description into this one's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import tempfile
import zipfile

import numpy as np
from sklearn.utils.validation import check_is_fitted

from . import layers as specs_module
from .distributed import is_main_process
from .layers import LayerSpec, to_python

FORMAT = "sklearn-cnn/4"
#: earlier formats, still read: whole fitted state (/4) came after named targets (/3),
#: the regressor (/2) and the checksum (/1)
OLD_FORMATS = ("sklearn-cnn/3", "sklearn-cnn/2", "sklearn-cnn/1")
_CHECKSUMMED = (FORMAT, "sklearn-cnn/3", "sklearn-cnn/2")
_SPEC_TYPES = {cls.__name__: cls for cls in specs_module.SPEC_TYPES}
_TUPLE_PARAMS = ("input_shape", "filters", "hidden_units")
#: state that is not the model's: how requests are routed, which version wrote it
_NOT_SAVED = ("network_", "_metadata_request", "_sklearn_version", "_skl_callbacks",
              "_parent_callback_ctx")


# -- specs and parameters as JSON ------------------------------------------------------

def spec_to_json(spec: LayerSpec) -> dict:
    fields = {}
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if isinstance(spec, specs_module.Residual):
            value = [spec_to_json(inner) for inner in value]
        fields[field.name] = value
    return {"type": type(spec).__name__, **fields}


def spec_from_json(data: dict) -> LayerSpec:
    data = dict(data)
    cls = _SPEC_TYPES.get(data.pop("type", None))
    if cls is None:
        raise ValueError(f"unknown layer type in model file: {data!r}")
    if cls is specs_module.Residual:
        return cls(**{k: tuple(spec_from_json(s) for s in v) for k, v in data.items()})
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def params_to_json(params: dict) -> dict:
    out = {}
    for name, value in params.items():
        if name == "init_from":
            value = None  # only used to start a fit; the weights are saved anyway
        elif name == "arch" and isinstance(value, (list, tuple)):
            value = {"specs": [spec_to_json(s) for s in value]}
        elif name == "class_weight" and isinstance(value, dict):
            value = {"pairs": [[plain(k), plain(v)] for k, v in value.items()]}
        elif callable(value) or isinstance(value, np.random.RandomState):
            raise ValueError(f"{name}={value!r} cannot be saved as data; use a string or "
                             "number (or pickle the estimator, trusting its source)")
        out[name] = plain(value)
    return out


def params_from_json(data: dict) -> dict:
    params = dict(data)
    if isinstance(params.get("arch"), dict):
        params["arch"] = [spec_from_json(s) for s in params["arch"]["specs"]]
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = {k: v for k, v in params["class_weight"]["pairs"]}
    for name in _TUPLE_PARAMS:
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    return params


def plain(value):
    """NumPy scalars and arrays, tuples -> JSON-ready Python values."""
    value = to_python(value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def _typed(name: str, array: np.ndarray) -> tuple[np.ndarray, bool]:
    """An array as a pickle-free one, and whether it was an object array (labels from
    a pandas Series, column names): strings, numbers or bools alike."""
    if array.dtype != object:
        return array, False
    values = array.tolist()
    for kinds in ((str,), (bool,), (int, float)):
        if all(isinstance(v, kinds) for v in values):
            return np.asarray(values), True
    raise ValueError(f"{name} {values!r} mixes value types and cannot be saved without "
                     "pickle; use values of one type (all strings or all numbers)")


# -- bytes on disk ---------------------------------------------------------------------

def checksum(meta: bytes, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """SHA-256 of the description and of every array's name, dtype, shape and bytes,
    as a uint8 array: a file changed anywhere, even where it still parses, is
    refused when read."""
    digest = hashlib.sha256(meta)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def write_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an ``.npz`` file next to ``path`` under a temporary name,
    then rename it over ``path``: a write that fails half-way (a full disk, Ctrl-C)
    leaves whatever was at ``path`` before intact."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):  # else the error would name the temporary file
        raise FileNotFoundError(f"cannot write {str(os.fspath(path))!r}: the folder "
                                f"{folder!r} does not exist")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".sklearn-cnn-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def is_model_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an archive laid out as a model file (not whether it is
    intact: :func:`read_model` checks that)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "meta.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


#: the first bytes of files a model path is mistaken for, and what they are
_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
          b"BM": "a BMP image", b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image",
          b"RIFF": "a RIFF (WebP, WAV...) file", b"%PDF": "a PDF document",
          b"\x93NUMPY": "a single NumPy array (.npy)", b"\x80": "a pickle"}


def _not_a_model_file(path) -> str | None:
    """What ``path`` is instead of a model file, when its first bytes tell (an image
    passed where a model was expected, say); None for an archive or unknown bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def read_model(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The description and the arrays of a model file, checked against its checksum
    and brought to this format's layout; a ValueError naming ``path`` for anything
    that is not such a file, intact."""
    kind = None if not os.path.isfile(path) else _not_a_model_file(path)
    if kind is not None and kind != "a pickle":
        raise ValueError(f"{str(os.fspath(path))!r} is not a readable sklearn-cnn model "
                         f"file: it is {kind}, where save() writes a .npz archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy refuses object arrays with allow_pickle=False
            raise ValueError(f"{path} was refused: it holds pickled objects, which could "
                             f"run code on load ({exc})") from None
        raise ValueError(f"{path} is not a readable sklearn-cnn model file: {exc}") from None
    except Exception as exc:  # a damaged zip fails in many ways: all mean the same here
        raise ValueError(f"{path} is not a readable sklearn-cnn model file: "
                         f"{type(exc).__name__}: {exc}") from None
    try:
        if any(not isinstance(a, np.ndarray) for a in arrays.values()):
            raise TypeError("it holds members that are not numpy arrays")
        encoded = arrays.pop("meta").tobytes()
        meta = json.loads(encoded.decode())
        if not isinstance(meta, dict):
            raise TypeError("its description is not a JSON object")
    except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable sklearn-cnn model file: {exc}") from None
    if meta.get("format") not in (FORMAT, *OLD_FORMATS):
        raise ValueError(f"{path} is not a {FORMAT} model file")
    if meta["format"] in _CHECKSUMMED:
        stored = arrays.pop("checksum", None)
        if stored is None or not np.array_equal(stored, checksum(encoded, arrays)):
            raise ValueError(f"{path} is damaged: its contents do not match the checksum "
                             "written with them")
    if meta["format"] != FORMAT:
        try:
            meta, arrays = _from_old_format(meta, arrays)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path} has a damaged model description: {exc!r}") from None
    return meta, arrays


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The canonical weights of a model file (checked as :func:`read_model` checks)."""
    _, arrays = read_model(path)
    return {k.removeprefix("weights/"): v for k, v in arrays.items()
            if k.startswith("weights/")}


def _from_old_format(meta: dict, arrays: dict) -> tuple[dict, dict]:
    """A description of format /1-/3 in this format's layout: the fitted attributes
    those files kept, and those that follow from them."""
    arrays = dict(arrays)
    if "targets" in meta:  # /3 named its targets
        fitted = dict(meta["targets"])
        for key in [k for k in arrays if k.startswith("targets/")]:
            arrays[f"fitted/{key.removeprefix('targets/')}"] = arrays.pop(key)
    else:  # a classifier of /1 or /2
        fitted = {}
        arrays["fitted/classes_"] = arrays.pop("classes")
    loss_curve = list(meta["loss_curve"])
    fitted.update(n_features_in_=math.prod(meta["input_shape"]), loss_curve_=loss_curve,
                  n_iter_=meta["n_iter"], t_=meta["t"], validation_scores_=None,
                  best_validation_score_=None,
                  best_loss_=min(loss_curve) if loss_curve else None)
    objects = ["classes_"] if meta.get("object_classes") else []
    if meta.get("feature_names") is not None:
        arrays["fitted/feature_names_in_"] = np.asarray(meta["feature_names"])
        objects.append("feature_names_in_")
    network = {name: meta[name] for name in ("backend", "specs", "input_shape", "dtype",
                                             "notes")}
    return {"format": FORMAT, "estimator": meta.get("estimator", "CNNClassifier"),
            "params": meta["params"], "network": network, "fitted": fitted,
            "object_arrays": objects}, arrays


# -- an estimator to a file ------------------------------------------------------------

def save(estimator, path: str | os.PathLike) -> None:
    """Write a fitted ``CNNClassifier`` or ``CNNRegressor`` to ``path`` (an ``.npz``
    file): its parameters, its network's specs and weights, and its whole fitted
    state, as plain arrays and JSON, written atomically (see
    ``write_atomically``). In data-parallel training (``torchrun``) only the first
    process writes: the others hold the same estimator."""
    check_is_fitted(estimator)
    if not is_main_process():
        return
    network = estimator.network_
    network.require_specs("save()")
    params = estimator.get_params(deep=False)
    fitted, arrays, objects = {}, {}, []
    for name, value in estimator.__getstate__().items():
        if name in params or name in _NOT_SAVED:
            continue
        if isinstance(value, np.ndarray):
            arrays[f"fitted/{name}"], was_object = _typed(name, value)
            objects += [name] if was_object else []
        else:
            fitted[name] = plain(value)
    meta = {
        "format": FORMAT, "estimator": type(estimator).__name__,
        "params": params_to_json(params),
        "network": {"backend": network.backend_name,
                    "specs": [spec_to_json(s) for s in network.specs],
                    "input_shape": list(network.input_shape), "dtype": str(network.dtype),
                    "notes": network.notes},
        "fitted": fitted, "object_arrays": objects,
    }
    arrays.update({f"weights/{k}": v for k, v in network.get_weights().items()})
    try:
        encoded = json.dumps(meta).encode()
    except TypeError as exc:
        raise ValueError(f"the fitted state cannot be saved as data: {exc}") from None
    arrays["meta"] = np.frombuffer(encoded, dtype=np.uint8)
    arrays["checksum"] = checksum(encoded, {k: v for k, v in arrays.items() if k != "meta"})
    write_atomically(path, arrays)
