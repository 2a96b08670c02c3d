"""Saving and loading fitted classifiers without pickle.

``CNNClassifier.save(path)`` writes one ``.npz`` file: the canonical weights as plain
arrays and a JSON document (parameters, architecture specs, classes, fitted
attributes). :func:`load` reads it with ``allow_pickle=False``, so opening a model
file cannot run code; a file holding pickled objects is refused. (Pickle and joblib
files, by contrast, run whatever code they contain: load those only from sources
you trust.) The optimizer state is not saved: ``partial_fit`` after ``load``
starts a fresh optimizer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile

import numpy as np

from . import layers as specs_module
from .layers import LayerSpec

FORMAT = "sklearn-cnn/1"
_SPEC_TYPES = {cls.__name__: cls for cls in specs_module.SPEC_TYPES}
_TUPLE_PARAMS = ("input_shape", "filters", "hidden_units")


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


def _params_to_json(params: dict) -> dict:
    out = {}
    for name, value in params.items():
        if name == "init_from":
            value = None  # only used to start a fit; the weights are saved anyway
        elif name == "arch" and isinstance(value, (list, tuple)):
            value = {"specs": [spec_to_json(s) for s in value]}
        elif name == "class_weight" and isinstance(value, dict):
            value = {"pairs": [[_plain(k), v] for k, v in value.items()]}
        elif callable(value) or isinstance(value, np.random.RandomState):
            raise ValueError(f"{name}={value!r} cannot be saved as data; use a string or "
                             "number (or pickle the estimator, trusting its source)")
        out[name] = _plain(value)
    return out


def _params_from_json(data: dict) -> dict:
    params = dict(data)
    if isinstance(params.get("arch"), dict):
        params["arch"] = [spec_from_json(s) for s in params["arch"]["specs"]]
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = {k: v for k, v in params["class_weight"]["pairs"]}
    for name in _TUPLE_PARAMS:
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    return params


def _plain(value):
    """numpy scalars and tuples -> JSON-ready Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def save(estimator, path: str | os.PathLike) -> None:
    """Write a fitted ``CNNClassifier`` to ``path`` (an ``.npz`` file)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    estimator._require_specs("save()")
    if estimator.classes_.dtype == object:
        raise ValueError("classes of mixed or object type cannot be saved without "
                         "pickle; use string or numeric labels")
    meta = {
        "format": FORMAT,
        "params": _params_to_json(estimator.get_params(deep=False)),
        "specs": [spec_to_json(s) for s in estimator.specs_],
        "notes": estimator._notes,
        "input_shape": list(estimator.input_shape_),
        "dtype": str(estimator._model_dtype()),
        "backend": estimator._backend_name,
        "loss_curve": [float(v) for v in estimator.loss_curve_],
        "n_iter": int(estimator.n_iter_), "t": int(estimator.t_),
        "feature_names": (list(map(str, estimator.feature_names_in_))
                          if hasattr(estimator, "feature_names_in_") else None),
    }
    arrays = {f"weights/{k}": v for k, v in estimator.get_weights().items()}
    arrays["classes"] = estimator.classes_
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load(path: str | os.PathLike, backend: str | None = None):
    """Read a classifier written by ``CNNClassifier.save``, on ``backend`` (default:
    the one it was saved from). Never unpickles anything.

    Raises
    ------
    ValueError
        If the file is not a model file of this format, is truncated or tampered
        with, holds pickled objects, or its weights do not fit its architecture.
    """
    from ._classifier import CNNClassifier
    from ._training import History
    from .backends import get_backend

    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        if not all(isinstance(a, np.ndarray) for a in arrays.values()):
            raise OSError("it holds members that are not numpy arrays")
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, UnicodeDecodeError,
            json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable sklearn-cnn model file: {exc}") from None
    except ValueError as exc:  # numpy refuses object arrays when allow_pickle=False
        raise ValueError(f"{path} was refused: it holds pickled objects, which could "
                         f"run code on load ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} model file")
    try:
        params = _params_from_json(meta["params"])
        if backend is not None:
            params["backend"] = backend
        estimator = CNNClassifier(**params)
        layer_specs = tuple(spec_from_json(s) for s in meta["specs"])
        input_shape = tuple(meta["input_shape"])
        weights = {k.removeprefix("weights/"): v for k, v in arrays.items()
                   if k.startswith("weights/")}
        target = get_backend(estimator.backend)
        model = target.build(layer_specs, input_shape, weights,
                             config=estimator._training_config(layer_specs),
                             dtype=np.dtype(meta["dtype"]), device=estimator.device)
        history = History(tuple(meta["loss_curve"]), None, meta["t"])
        feature_names = meta["feature_names"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} has a damaged model description: {exc!r}") from None
    estimator._set_fitted(
        model, target.name, history, classes=arrays["classes"], input_shape=input_shape,
        specs=layer_specs, notes=meta["notes"],
        feature_names=None if feature_names is None else np.asarray(feature_names,
                                                                    dtype=object))
    return estimator
