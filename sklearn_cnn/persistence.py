"""Saving and loading fitted estimators without pickle.

``CNNClassifier.save(path)`` (and ``CNNRegressor.save``) writes one ``.npz`` file:
the canonical weights as plain arrays and a JSON document (estimator, parameters,
architecture specs, classes or target standardization, fitted attributes).
:func:`~sklearn_cnn.load` reads it with ``allow_pickle=False``, so opening a model
file cannot run code; a file holding pickled objects is refused. (Pickle and joblib
files, by contrast, run whatever code they contain: load those only from sources
you trust.) The optimizer state is not saved: ``partial_fit`` after ``load``
starts a fresh optimizer.
"""

from __future__ import annotations

import os

import numpy as np

from . import _format, preprocessing
from . import layers as specs_module
from ._classifier import CNNClassifier
from ._format import params_from_json, read_model, spec_from_json
from ._network import FittedNetwork
from ._regressor import CNNRegressor
from .architectures import check_spec_list
from .backends import BACKENDS, get_backend

__all__ = ["load", "save", "skops_trusted_types"]

ESTIMATORS = {cls.__name__: cls for cls in (CNNClassifier, CNNRegressor)}


def save(estimator, path: str | os.PathLike) -> None:
    """Write a fitted ``CNNClassifier`` or ``CNNRegressor`` to ``path`` (an ``.npz``
    file), as ``estimator.save(path)`` does; :func:`load` reads it back.

    The file format describes these two estimators only. A pipeline, or any other
    estimator, is saved with skops (``pip install 'sklearn-cnn[skops]'``), loaded
    with the types of :func:`~sklearn_cnn.persistence.skops_trusted_types`.

    Raises
    ------
    TypeError
        If ``estimator`` is not a ``CNNClassifier`` or ``CNNRegressor`` (a Pipeline,
        say); the message says how to save it with skops.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from sklearn_cnn import CNNClassifier, save
    >>> X = np.random.default_rng(0).random((20, 8, 8), dtype=np.float32)
    >>> pipeline = make_pipeline(FunctionTransformer(), CNNClassifier("lenet", max_iter=1))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(pipeline.fit(X, np.arange(20) % 2), path)
    Traceback (most recent call last):
        ...
    TypeError: save() writes a fitted CNNClassifier or CNNRegressor, not a Pipeline. ...
    >>> save(pipeline[-1], path)                  # the CNN alone
    """
    if not isinstance(estimator, tuple(ESTIMATORS.values())):
        name = type(estimator).__name__
        last = getattr(estimator, "steps", None)
        alone = (f"; the CNN of a pipeline alone is saved with save({name.lower()}[-1], "
                 "path)" if last and isinstance(last[-1][1], tuple(ESTIMATORS.values()))
                 else "")
        raise TypeError(f"save() writes a fitted CNNClassifier or CNNRegressor, not a "
                        f"{name}. Save a pipeline, or any other estimator, with skops: "
                        f"skops.io.dump({name.lower()}, path), and load it with "
                        "skops.io.load(path, trusted=sklearn_cnn.persistence."
                        f"skops_trusted_types()){alone}")
    _format.save(estimator, path)


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
    meta, arrays = read_model(path)
    try:
        params = params_from_json(meta["params"])
        if backend is not None:
            params["backend"] = backend
        kind = meta["estimator"]
        if kind not in ESTIMATORS:
            raise ValueError(f"it holds an unknown estimator {kind!r}")
        estimator = ESTIMATORS[kind](**params)
        state = {**meta["fitted"], **_fitted_arrays(meta, arrays)}
        described = meta["network"]
        specs = tuple(spec_from_json(s) for s in described["specs"])
        input_shape = tuple(described["input_shape"])
        check_spec_list(specs, input_shape, _n_outputs(state))
        weights = {k.removeprefix("weights/"): v for k, v in arrays.items()
                   if k.startswith("weights/")}
        state["network_"] = FittedNetwork.build(
            estimator.backend, specs, input_shape, weights,
            dtype=np.dtype(described["dtype"]), device=estimator.device,
            notes=described["notes"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} has a damaged model description: {exc!r}") from None
    except ValueError as exc:
        raise ValueError(f"{path} does not describe a usable model: {exc}") from None
    # the fitted state as it was saved, set as pickle sets it
    estimator.__setstate__(state)
    return estimator


def _fitted_arrays(meta: dict, arrays: dict) -> dict:
    """The fitted attributes stored as arrays, object arrays restored."""
    fitted = {k.removeprefix("fitted/"): v for k, v in arrays.items()
              if k.startswith("fitted/")}
    for name in meta["object_arrays"]:
        fitted[name] = fitted[name].astype(object)
    return fitted


def _n_outputs(state: dict) -> int:
    """The output width the fitted targets need, once they are checked: a
    classifier's distinct ``classes_``, a regressor's finite standardization of one
    shape."""
    if "classes_" in state:
        classes = state["classes_"]
        if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
            raise ValueError(f"its classes {classes!r} are not a list of distinct labels")
        return len(classes)
    mean, scale, n_outputs = (state["target_mean_"], state["target_scale_"],
                              state["n_outputs_"])
    if not (isinstance(n_outputs, int) and n_outputs >= 1
            and mean.shape == scale.shape == (n_outputs,) and mean.dtype.kind == "f"
            and np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()
            and state["_target_ndim"] in (1, 2)):
        raise ValueError("its target standardization is not finite numbers of one "
                         "shape per output")
    return n_outputs


def skops_trusted_types() -> list[str]:
    """The types of this package that a fitted estimator (or a pipeline of its
    transformers) holds, as ``skops.io.load(path, trusted=...)`` takes them.

    skops refuses to load types it does not know unless told to trust them; these are
    the estimators, the fitted network, the image transformers, the layer specs, and
    what each installed backend's portable state is made of (the training settings;
    the NumPy backend's network, layers and optimizers; a torch-backend model is
    stored as NumPy arrays, see ``FittedNetwork.portable_state``). mlflow takes the same list
    as ``skops_trusted_types``. scikit-learn's own types are trusted by skops already.

    Examples
    --------
    >>> "sklearn_cnn._classifier.CNNClassifier" in skops_trusted_types()
    True
    """
    network_types = {cls for name in BACKENDS if _installed(name)
                     for cls in get_backend(name).portable_types()}
    transformers = [preprocessing.ImageLoader, preprocessing.ChannelStandardizer,
                    preprocessing.Resize, preprocessing.ImagesToFlat,
                    preprocessing.FlatToImages]
    classes = [CNNClassifier, CNNRegressor, FittedNetwork, *transformers,
               *specs_module.SPEC_TYPES, *network_types]
    # the NumPy network keeps the dtype it computes in
    return sorted({f"{cls.__module__}.{cls.__qualname__}" for cls in classes} | {"numpy.dtype"})


def _installed(backend: str) -> bool:
    try:
        get_backend(backend)
    except ImportError:
        return False
    return True
