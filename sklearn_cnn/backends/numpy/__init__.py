"""The native NumPy backend: every layer's forward and backward written from scratch."""

from .backend import BACKEND, NumpyBackend
from .network import BUILDERS, Network

__all__ = ["BACKEND", "BUILDERS", "Network", "NumpyBackend"]
