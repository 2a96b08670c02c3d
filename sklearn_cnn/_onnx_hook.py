"""The ONNX converters, registered with skl2onnx whenever both packages are imported.

skl2onnx finds a converter only in its own registry (it has no plugin entry points),
so ``skl2onnx.to_onnx(cnn)`` works only after :mod:`sklearn_cnn.onnx` has registered
them. Importing that module imports skl2onnx and onnx, which the core package must
not need; so ``import sklearn_cnn`` calls :func:`register_when_skl2onnx_is_imported`:

- skl2onnx already imported: the converters are registered at once;
- otherwise a finder at the front of ``sys.meta_path`` waits for ``import skl2onnx``
  (by the user or by any library), lets the usual finders load it, and registers the
  converters as soon as it has loaded. It answers for no other module, and never
  imports skl2onnx itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings

__all__ = ["register_when_skl2onnx_is_imported"]

_TRIGGER = "skl2onnx"


def register_when_skl2onnx_is_imported() -> None:
    """Register the converters now if skl2onnx is imported, else as soon as it is."""
    if _TRIGGER in sys.modules:
        _register()
    elif not any(isinstance(finder, _AfterSkl2onnx) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterSkl2onnx())


def _register() -> None:
    """Import :mod:`sklearn_cnn.onnx`, which registers the converters on import (a
    module already being imported registers them when its import ends). A failure
    warns rather than breaking the user's ``import skl2onnx``."""
    try:
        importlib.import_module("sklearn_cnn.onnx")
    except Exception as exc:  # an onnx that skl2onnx loads but the converters cannot use
        warnings.warn(f"sklearn_cnn could not register its ONNX converters with skl2onnx "
                      f"({type(exc).__name__}: {exc}); skl2onnx.to_onnx will not convert "
                      "CNNClassifier or CNNRegressor", UserWarning, stacklevel=2)


class _AfterSkl2onnx(importlib.abc.MetaPathFinder):
    """Finds skl2onnx as the other finders do, with a loader that registers the
    converters once skl2onnx has loaded."""

    def find_spec(self, name, path, target=None):
        if name != _TRIGGER:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """``loader``, registering the converters once it has executed the module; the
    module keeps ``loader`` as its own (``__loader__``, ``__spec__.loader``)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _register()

    def __getattr__(self, name):  # anything else a loader offers (resources, source)
        return getattr(self.loader, name)
