"""Named CNN architectures, each a short tuple of backend-neutral layer specs."""

from . import lenet, simple  # noqa: F401  (registers the architectures)
from ._registry import (
    Architecture,
    build_architecture,
    get_architecture,
    list_architectures,
    register_architecture,
    unregister_architecture,
)

__all__ = ["Architecture", "build_architecture", "get_architecture",
           "list_architectures", "register_architecture", "unregister_architecture"]
