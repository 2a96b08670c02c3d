"""The PyTorch backend (``pip install 'sklearn-cnn[torch]'``): specs as ``nn.Module``,
training through skorch."""

from .backend import BACKEND, SpecNet, TorchBackend
from .modules import BUILDERS, build_module, export_canonical, load_canonical

__all__ = ["BACKEND", "BUILDERS", "SpecNet", "TorchBackend",
           "build_module", "export_canonical", "load_canonical"]
