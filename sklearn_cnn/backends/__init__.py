"""Backends: what turns layer specs into a trained network.

A backend implements :class:`Backend`. The estimator only talks to this interface,
so a new backend (PyTorch through skorch, say) is one more entry in ``BACKENDS``.
"""

from __future__ import annotations

import importlib

from ._base import (
    LOSSES,
    REGRESSION_LOSSES,
    Backend,
    TrainingConfig,
    adaptive_pool_matrix,
    needs_specs,
    softmax,
)

#: backend name -> module that defines ``BACKEND``
BACKENDS = {"numpy": "sklearn_cnn.backends.numpy", "torch": "sklearn_cnn.backends.torch"}

#: what each backend needs beyond numpy and scikit-learn, and the extra that has it
REQUIREMENTS = {"torch": (("torch", "skorch"), "torch")}


def get_backend(name: str) -> Backend:
    """The backend called ``name``.

    Raises ValueError for an unknown name and ImportError, naming the extra to
    install, when the backend's libraries are missing.
    """
    if name not in BACKENDS:
        raise ValueError(f"Unknown backend {name!r}; expected one of {sorted(BACKENDS)}")
    try:
        return importlib.import_module(BACKENDS[name]).BACKEND
    except ImportError as exc:
        modules, extra = REQUIREMENTS.get(name, ((), None))
        missing = getattr(exc, "name", None) or ""
        if extra is None or missing.split(".")[0] not in modules:
            raise
        raise ImportError(
            f"backend={name!r} needs {' and '.join(modules)}, which are not installed "
            f"({exc}); install them with: pip install 'sklearn-cnn[{extra}]' "
            f"(in a clone of the repository: pip install -e '.[{extra}]')"
        ) from exc


__all__ = ["BACKENDS", "LOSSES", "REGRESSION_LOSSES", "Backend", "TrainingConfig",
           "adaptive_pool_matrix", "get_backend", "needs_specs", "softmax"]
