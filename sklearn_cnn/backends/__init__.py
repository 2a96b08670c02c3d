"""Backends: what turns layer specs into a trained network.

A backend implements :class:`Backend`. The estimator only talks to this interface,
so a new backend (PyTorch through skorch, say) is one more entry in ``BACKENDS``.
"""

from __future__ import annotations

import importlib

from ._base import Backend, TrainingConfig

#: backend name -> module that defines ``BACKEND``
BACKENDS = {"numpy": "sklearn_cnn.backends.numpy"}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ValueError naming the known ones."""
    if name not in BACKENDS:
        raise ValueError(f"Unknown backend {name!r}; expected one of {sorted(BACKENDS)}")
    return importlib.import_module(BACKENDS[name]).BACKEND


__all__ = ["BACKENDS", "Backend", "TrainingConfig", "get_backend"]
