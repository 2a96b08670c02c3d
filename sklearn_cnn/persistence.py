"""Saving and loading fitted estimators without pickle.

``CNNClassifier.save(path)`` (and ``CNNRegressor.save``) writes one ``.npz`` file:
the canonical weights as plain arrays and a JSON document (estimator, parameters,
architecture specs, classes or target standardization, fitted attributes).
:func:`load` reads it with ``allow_pickle=False``, so opening a model
file cannot run code; a file holding pickled objects is refused. (Pickle and joblib
files, by contrast, run whatever code they contain: load those only from sources
you trust.) The optimizer state is not saved: ``partial_fit`` after ``load``
starts a fresh optimizer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile

import numpy as np

from . import layers as specs_module
from .layers import LayerSpec, to_python

FORMAT = "sklearn-cnn/3"
#: files written before the regressor (/2) and before the checksum (/1), still read
_OLD_FORMATS = ("sklearn-cnn/2", "sklearn-cnn/1")
_CHECKSUMMED = ("sklearn-cnn/3", "sklearn-cnn/2")
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
            value = {"pairs": [[_plain(k), _plain(v)] for k, v in value.items()]}
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
    """NumPy scalars and arrays, tuples -> JSON-ready Python values."""
    value = to_python(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _classes_to_array(classes: np.ndarray) -> tuple[np.ndarray, bool]:
    """``classes_`` as a pickle-free array, and whether it was an object array (labels
    from a pandas Series or a list of str): strings, numbers or bools alike."""
    if classes.dtype != object:
        return classes, False
    values = classes.tolist()
    for kinds in ((str,), (bool,), (int, float)):
        if all(isinstance(v, kinds) for v in values):
            return np.asarray(values), True
    raise ValueError(f"classes {values!r} mix label types and cannot be saved without "
                     "pickle; use labels of one type (all strings or all numbers)")


def checksum(meta: bytes, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """SHA-256 of the description and of every array's name, dtype, shape and bytes,
    as a uint8 array: a file changed anywhere, even where it still parses, is
    refused at ``load``."""
    digest = hashlib.sha256(meta)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def _estimator_classes() -> dict:
    from ._classifier import CNNClassifier
    from ._regressor import CNNRegressor

    return {"CNNClassifier": CNNClassifier, "CNNRegressor": CNNRegressor}


def save(estimator, path: str | os.PathLike) -> None:
    """Write a fitted ``CNNClassifier`` or ``CNNRegressor`` to ``path`` (an ``.npz``
    file).

    The file is written next to ``path`` under a temporary name and then renamed
    over it, so a save that fails half-way (a full disk, Ctrl-C) leaves whatever was
    at ``path`` before intact.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    estimator._require_specs("save()")
    targets = estimator._fitted_targets()
    target_arrays = {name: value for name, value in targets.items()
                     if isinstance(value, np.ndarray)}
    object_classes = False
    if "classes_" in target_arrays:
        target_arrays["classes_"], object_classes = _classes_to_array(targets["classes_"])
    meta = {
        "format": FORMAT,
        "estimator": type(estimator).__name__,
        "targets": {name: _plain(value) for name, value in targets.items()
                    if name not in target_arrays},
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
        "object_classes": object_classes,
    }
    arrays = {f"weights/{k}": v for k, v in estimator.get_weights().items()}
    arrays.update({f"targets/{name}": value for name, value in target_arrays.items()})
    encoded = json.dumps(meta).encode()
    arrays["meta"] = np.frombuffer(encoded, dtype=np.uint8)
    arrays["checksum"] = checksum(encoded, {k: v for k, v in arrays.items() if k != "meta"})
    _write_atomically(path, arrays)


def _write_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
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


def _read_arrays(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The description and the arrays of a model file, checked against its checksum;
    a ValueError naming ``path`` for anything that is not such a file, intact."""
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
    if meta.get("format") not in (FORMAT, *_OLD_FORMATS):
        raise ValueError(f"{path} is not a {FORMAT} model file")
    if meta["format"] in _CHECKSUMMED:
        stored = arrays.pop("checksum", None)
        if stored is None or not np.array_equal(stored, checksum(encoded, arrays)):
            raise ValueError(f"{path} is damaged: its contents do not match the checksum "
                             "written with them")
    return meta, arrays


def _read_targets(meta: dict, arrays: dict) -> dict:
    """The fitted target attributes of a model file, checked: a classifier's
    distinct ``classes_``, a regressor's finite standardization of one shape."""
    if "targets" not in meta:  # a classifier file of format /1 or /2
        targets = {"classes_": arrays["classes"]}
    else:
        targets = {**meta["targets"], **{k.removeprefix("targets/"): v for k, v in
                                         arrays.items() if k.startswith("targets/")}}
    if "classes_" in targets:
        classes = targets["classes_"]
        if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
            raise ValueError(f"its classes {classes!r} are not a list of distinct labels")
        if meta.get("object_classes"):
            targets["classes_"] = classes.astype(object)
        return targets
    mean, scale, n_outputs = targets["target_mean_"], targets["target_scale_"], \
        targets["n_outputs_"]
    if not (isinstance(n_outputs, int) and n_outputs >= 1
            and mean.shape == scale.shape == (n_outputs,) and mean.dtype.kind == "f"
            and np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()
            and targets["_target_ndim"] in (1, 2)):
        raise ValueError("its target standardization is not finite numbers of one "
                         "shape per output")
    return targets


def load(path: str | os.PathLike, backend: str | None = None):
    """Read an estimator written by ``CNNClassifier.save`` or ``CNNRegressor.save``,
    on ``backend`` (default: the one it was saved from). Never unpickles anything.

    Raises
    ------
    ValueError
        If the file is not a model file of this format, is truncated or changed
        anywhere (a checksum covers all it holds), holds pickled objects, or its
        weights, classes or targets do not fit its architecture.
    """
    from ._training import History
    from .architectures import check_spec_list
    from .backends import get_backend

    meta, arrays = _read_arrays(path)
    try:
        params = _params_from_json(meta["params"])
        if backend is not None:
            params["backend"] = backend
        kind = meta.get("estimator", "CNNClassifier")
        if kind not in _estimator_classes():
            raise ValueError(f"it holds an unknown estimator {kind!r}")
        estimator = _estimator_classes()[kind](**params)
        layer_specs = tuple(spec_from_json(s) for s in meta["specs"])
        input_shape = tuple(meta["input_shape"])
        targets = _read_targets(meta, arrays)
        check_spec_list(layer_specs, input_shape, estimator._n_outputs(targets))
        weights = {k.removeprefix("weights/"): v for k, v in arrays.items()
                   if k.startswith("weights/")}
        target = get_backend(estimator.backend)
        model = target.build(layer_specs, input_shape, weights,
                             config=estimator._training_config(layer_specs),
                             dtype=np.dtype(meta["dtype"]), device=estimator.device)
        history = History(tuple(meta["loss_curve"]), None, meta["t"])
        feature_names = meta["feature_names"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} has a damaged model description: {exc!r}") from None
    except ValueError as exc:
        raise ValueError(f"{path} does not describe a usable model: {exc}") from None
    estimator._set_fitted(
        model, target.name, history, targets=targets, input_shape=input_shape,
        specs=layer_specs, notes=meta["notes"],
        feature_names=None if feature_names is None else np.asarray(feature_names,
                                                                    dtype=object))
    return estimator


def skops_trusted_types() -> list[str]:
    """The types of this package that a fitted estimator (or a pipeline of its
    transformers) holds, as ``skops.io.load(path, trusted=...)`` takes them.

    skops refuses to load types it does not know unless told to trust them; these are
    the estimators, the image transformers, the layer specs, the training settings
    and the NumPy backend's network, layers and optimizers (a torch-backend model is
    stored as NumPy arrays, see ``BaseCNN.__getstate__``). mlflow takes the same list
    as ``skops_trusted_types``. scikit-learn's own types are trusted by skops already.

    Examples
    --------
    >>> "sklearn_cnn._classifier.CNNClassifier" in skops_trusted_types()
    True
    """
    from . import preprocessing
    from ._classifier import CNNClassifier
    from ._regressor import CNNRegressor
    from .backends._base import TrainingConfig
    from .backends.numpy import layers as numpy_layers
    from .backends.numpy.network import Network
    from .backends.numpy.optim import OPTIMIZERS

    layer_classes = [cls for cls in vars(numpy_layers).values()
                     if isinstance(cls, type) and issubclass(cls, numpy_layers.Layer)]
    transformers = [preprocessing.ImageLoader, preprocessing.ChannelStandardizer,
                    preprocessing.Resize, preprocessing.ImagesToFlat,
                    preprocessing.FlatToImages]
    classes = [CNNClassifier, CNNRegressor, TrainingConfig, Network, *transformers,
               *specs_module.SPEC_TYPES, *layer_classes, *OPTIMIZERS.values()]
    # the NumPy network keeps the dtype it computes in
    return sorted({f"{cls.__module__}.{cls.__qualname__}" for cls in classes} | {"numpy.dtype"})
