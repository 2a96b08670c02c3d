"""Named CNN architectures, each a short tuple of backend-neutral layer specs."""

from . import alexnet, auto, lenet, resnet, simple, vgg  # noqa: F401  (registers them)
from ._registry import (
    Architecture,
    architecture_parameters,
    build_architecture,
    check_spec_list,
    get_architecture,
    list_architectures,
    register_architecture,
    unregister_architecture,
)

__all__ = ["Architecture", "architecture_parameters", "build_architecture", "check_spec_list",
           "get_architecture", "list_architectures", "register_architecture",
           "unregister_architecture"]
