"""The fitted network: what an estimator keeps after ``fit``, and what every module
that uses a fitted estimator (files, explanations, ONNX, pictures, the command line)
reads through.

A :class:`FittedNetwork` is the backend that runs it, the backend's model, the layer
specs it was built from (None for a custom ``torch.nn.Module``), the image shape it
takes, and notes on how the architecture was adapted. Models are built from specs in
one place, :meth:`FittedNetwork.build`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ._streaming import as_images
from ._weights import walk
from .backends import Backend, TrainingConfig, get_backend, needs_specs
from .layers import LayerSpec, Shape
from .summary import Summary, summarize_specs


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a fitted network: its key (``"3"``, or ``"2.body.1"`` inside a
    residual block), its spec, and the shapes of one sample before and after it.

    Attributes
    ----------
    key : str
        The layer's key, as in the keys of ``get_weights()`` and the ``layer=``
        arguments of the pictures and explanations.
    spec : LayerSpec
        What the layer is.
    input_shape, output_shape : tuple of int
        Shape of one sample before and after the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> X = np.random.default_rng(0).random((40, 8, 8), dtype=np.float32)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, np.arange(40) % 2)
    >>> first = clf.network_.layers()[0]
    >>> first.key, first.input_shape, first.output_shape
    ('0', (1, 8, 8), (6, 8, 8))
    >>> first.spec.out_channels
    6
    """

    key: str
    spec: LayerSpec
    input_shape: Shape
    output_shape: Shape


class FittedNetwork:
    """A trained network and everything needed to run, explain, move or save it.

    Parameters
    ----------
    backend : Backend or str
        The backend that runs ``model`` (``"numpy"`` or ``"torch"``).
    model : object
        The backend's model (a NumPy ``Network``, a skorch ``NeuralNet``).
    specs : tuple of LayerSpec or None
        What the model was built from; None for a custom ``torch.nn.Module``.
    input_shape : tuple of int
        ``(C, H, W)`` of one image.
    notes : list of str, default=()
        How the architecture was adapted to the images, and what was loaded.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> X = np.random.default_rng(0).random((40, 8, 8), dtype=np.float32)
    >>> clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, np.arange(40) % 2)
    >>> network = clf.network_
    >>> network.backend_name, network.input_shape, network.n_outputs
    ('numpy', (1, 8, 8), 2)
    >>> images = network.images(X[:3])      # validated: (N, C, H, W) in its dtype
    >>> network.outputs(images).shape
    (3, 2)
    >>> network.forward(images, 0).shape     # LeNet's first convolution
    (3, 6, 8, 8)
    >>> network.to("numpy").get_weights()["0.weight"].shape
    (6, 1, 5, 5)
    """

    def __init__(self, backend: Backend | str, model: object,
                 specs: tuple[LayerSpec, ...] | None, input_shape: Shape, notes=()):
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.model = model
        self.specs = None if specs is None else tuple(specs)
        self.input_shape = tuple(int(n) for n in input_shape)
        self.notes = list(notes)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def build(cls, backend: Backend | str, specs: tuple[LayerSpec, ...], input_shape: Shape,
              weights: dict[str, np.ndarray], *, config: TrainingConfig | None = None,
              dtype=np.float32, device: str = "cpu", notes=()) -> FittedNetwork:
        """A network of ``specs`` with these canonical weights on ``backend``, ready to
        predict and to train with ``config``: the one place a model is built from
        specs."""
        backend = get_backend(backend) if isinstance(backend, str) else backend
        model = backend.build(tuple(specs), tuple(input_shape), weights, config=config,
                              dtype=dtype, device=device)
        return cls(backend, model, specs, input_shape, notes)

    @classmethod
    def from_module(cls, backend: Backend | str, module, input_shape: Shape,
                    n_outputs: int, seed: int, *, config: TrainingConfig,
                    dtype=np.float32, device: str = "cpu") -> FittedNetwork:
        """A network from a user's ``torch.nn.Module`` subclass or instance (a backend
        that cannot run one raises a ValueError)."""
        backend = get_backend(backend) if isinstance(backend, str) else backend
        model = backend.build_module(module, tuple(input_shape), n_outputs, seed,
                                     config=config, dtype=dtype, device=device)
        return cls(backend, model, None, input_shape)

    def to(self, backend: Backend | str, *, config: TrainingConfig | None = None,
           device: str = "cpu") -> FittedNetwork:
        """The same network, weights and BatchNorm statistics included, on ``backend``
        (a fresh optimizer made for ``config``); this one is unchanged."""
        self.require_specs("moving to another backend")
        return FittedNetwork.build(backend, self.specs, self.input_shape, self.get_weights(),
                                   config=config, dtype=self.dtype, device=device,
                                   notes=self.notes)

    # -- what it is --------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def dtype(self) -> np.dtype:
        """The float type the network computes in."""
        return self.backend.dtype(self.model)

    @property
    def n_outputs(self) -> int:
        """Width of the output layer."""
        return math.prod(self.shape_after())

    def require_specs(self, what: str) -> None:
        """Raise a ValueError saying that ``what`` needs a network built from specs."""
        if self.specs is None:
            raise needs_specs(what)

    def shape_after(self, n_layers: int | None = None) -> Shape:
        """Shape of one sample after the first ``n_layers`` top-level layers (all of
        them when None: the output's)."""
        self.require_specs("layer shapes")
        shape = self.input_shape
        for spec in self.specs[:n_layers]:
            shape = spec.output_shape(shape)
        return tuple(shape)

    def layers(self) -> list[LayerInfo]:
        """Every layer, in order, the layers inside residual blocks after their block."""
        self.require_specs("the layer list")
        return [LayerInfo(key, spec, shape, spec.output_shape(shape))
                for key, spec, shape, _ in walk(self.specs, self.input_shape)]

    def layer(self, key: int | str) -> LayerInfo:
        """The layer with this key: a top-level layer's number (``3`` or ``"3"``) or
        a key inside a residual block (``"2.body.1"``)."""
        entries = {info.key: info for info in self.layers()}
        name = str(key) if isinstance(key, (int, np.integer)) and not isinstance(key, bool) \
            else key
        if not isinstance(name, str) or name not in entries:
            raise ValueError(f"layer {key!r} is not a layer of this network; its keys are "
                             f"{list(entries)}")
        return entries[name]

    def summary(self) -> Summary:
        """Layer table: output shapes and parameter counts."""
        self.require_specs("summary()")
        return summarize_specs(self.specs, self.input_shape, self.notes)

    # -- running it --------------------------------------------------------------------

    def images(self, X, *, channels: str = "auto", input_shape=None,
               owner: str = "FittedNetwork", keep_pixels: bool = False) -> np.ndarray:
        """X validated as images of this network's shape, in its dtype.

        ``channels`` and ``input_shape`` are read as the estimator's parameters of
        those names; ``owner`` names the estimator in messages. ``keep_pixels``:
        ``uint8`` images stay ``uint8``, for :meth:`outputs`, which converts them pass
        by pass (a large memory-mapped array is never copied whole).
        """
        refuse_file_paths(X, owner, self.input_shape)
        shape = _shape_of(X)
        n_features = math.prod(self.input_shape)
        try:
            if input_shape is None and len(shape) == 2:
                if shape[1] != n_features:
                    raise ValueError(
                        f"X has {shape[1]} features, but {owner} is expecting {n_features} "
                        f"features as input: flat rows of images of shape "
                        f"{self.input_shape} (C, H, W)")
                # a flat row of several channels could be channels first or last: read
                # as fit reads it
                input_shape = self.input_shape if self.input_shape[0] == 1 else None
            images = as_images(X, input_shape=input_shape, channels=channels,
                               dtype=self.dtype, keep_pixels=keep_pixels)
            self.check_image_shape(images, owner)
        except ValueError:
            c, h, w = self.input_shape
            if shape in ((h, w), (c, h, w), (h, w, c)):
                raise ValueError(f"X has the shape of one image, {shape}; the estimator "
                                 "takes a batch of images: pass X[None] (or [image]) for "
                                 "one image") from None
            raise
        return images

    def check_image_shape(self, images: np.ndarray, owner: str = "FittedNetwork") -> None:
        """A ValueError unless ``images`` (N, C, H, W) have this network's shape."""
        if images.shape[1:] == self.input_shape:
            return
        n_features, expected = math.prod(images.shape[1:]), math.prod(self.input_shape)
        counts = (f"X has {n_features} features, but {owner} is expecting {expected} "
                  "features as input: " if n_features != expected else "")
        raise ValueError(f"{counts}X holds images of shape {images.shape[1:]} (C, H, W), "
                         f"but this {owner} was fitted on images of shape "
                         f"{self.input_shape}")

    def outputs(self, images: np.ndarray) -> np.ndarray:
        """The output layer's values (N, n_outputs) on validated images (or ``uint8``
        pixels, see :meth:`images`), float64, finite: a classifier's logits, a
        regressor's standardized predictions."""
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, if at all
            outputs = self.backend.predict_output(self.model, images)
        broken = ~np.isfinite(outputs).all(axis=1)
        if broken.any():  # never NaN rows, which predict would read as the first class
            raise ValueError(f"The network's output overflowed to inf or NaN for "
                             f"{broken.sum()} of the {len(outputs)} images; their values "
                             "are too large for it: scale the images as at fit time")
        return outputs

    def forward(self, images: np.ndarray, layer: int | str) -> np.ndarray:
        """The output of ``layer`` (see :meth:`layer`) on validated images, in
        evaluation mode."""
        key = self.layer(layer).key
        return self.backend.forward(self.model, images, key)

    def gradient(self, images: np.ndarray, output_grad: np.ndarray,
                 layer: int | str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(activation, gradient)``: the output of the top-level ``layer`` (the
        images themselves when None) and the gradient of ``sum(outputs *
        output_grad)`` with respect to it, in evaluation mode."""
        key = None if layer is None else self.layer(layer).key
        if key is not None and "." in key:
            raise ValueError(f"gradients are taken at a top-level layer; got {layer!r}")
        return self.backend.gradient(self.model, images, output_grad.astype(images.dtype),
                                     key)

    # -- weights and state -------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights (OIHW kernels, ``(out, in)`` dense matrices, BatchNorm
        statistics) by layer key, copies in the network's dtype."""
        return self.backend.get_weights(self.model)

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights, in place."""
        self.backend.set_weights(self.model, weights)

    def configure(self, config: TrainingConfig, keep_state: bool) -> None:
        """Prepare the model to go on training with ``config`` (see
        :meth:`~sklearn_cnn.backends.Backend.configure`)."""
        self.backend.configure(self.model, config, keep_state)

    def portable_state(self) -> dict:
        """Everything of the network as NumPy arrays and plain Python values, whatever
        the backend (what pickle and skops store)."""
        model = self.model if self.specs is None else self.backend.to_portable(self.model)
        return {"backend": self.backend_name, "model": model, "specs": self.specs,
                "input_shape": self.input_shape, "notes": self.notes}

    @classmethod
    def from_portable_state(cls, state: dict) -> FittedNetwork:
        """The network :meth:`portable_state` described."""
        backend = get_backend(state["backend"])
        model = state["model"]
        if state["specs"] is not None:
            model = backend.from_portable(state["specs"], state["input_shape"], model)
        return cls(backend, model, state["specs"], state["input_shape"], state["notes"])

    def __getstate__(self) -> dict:
        return self.portable_state()

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(vars(FittedNetwork.from_portable_state(state)))

    def __repr__(self) -> str:
        what = "custom module" if self.specs is None else f"{len(self.specs)} layers"
        return (f"FittedNetwork(backend={self.backend_name!r}, {what}, "
                f"input_shape={self.input_shape}, dtype={self.dtype})")


def refuse_file_paths(X, owner: str, input_shape: Shape | None = None) -> None:
    """A ValueError when X is file paths (one, or a sequence of str or path-like),
    saying that :class:`~sklearn_cnn.preprocessing.ImageLoader` reads them.

    The estimators take images as arrays; without this check, scikit-learn's
    validation would answer a list of paths with "Expected 2D array, got 1D array".
    ``input_shape``: ``(C, H, W)`` of a fitted network, for the size and mode to read
    the files in.
    """
    if not _are_paths(X):
        return
    first = X if _is_path(X) else next(iter(X))
    estimator = owner if owner.startswith("CNN") else "CNNClassifier"
    if input_shape is None:
        loader = "ImageLoader(size=(H, W))"
    else:
        mode = {1: ", mode='L'", 3: ", mode='RGB'", 4: ", mode='RGBA'"}.get(input_shape[0], "")
        loader = f"ImageLoader(size={tuple(input_shape[1:])}{mode})"
    raise ValueError(f"X holds file paths ({str(os.fspath(first))!r}...), but {owner} "
                     "takes images as arrays: read the files with "
                     "sklearn_cnn.preprocessing.ImageLoader, in front of it in a pipeline, "
                     f"make_pipeline({loader}, {estimator}()), or as X = "
                     f"{loader}.fit_transform(paths)")


def _are_paths(X) -> bool:
    """Whether X is one path, or a 1-D list, tuple, array or pandas Series whose first
    item is one: what no image array is."""
    if _is_path(X):
        return True
    if isinstance(X, np.ndarray):
        return (X.ndim == 1 and len(X) > 0
                and (X.dtype.kind == "U" or (X.dtype == object and _is_path(X[0]))))
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and _is_path(X[0])
    if hasattr(X, "iloc") and getattr(X, "ndim", None) == 1:  # a pandas Series
        return len(X) > 0 and _is_path(X.iloc[0])
    return False


def _is_path(value) -> bool:
    return isinstance(value, (str, os.PathLike))


def _shape_of(X) -> tuple:
    """X's array shape, or () when it has none (a ragged list, say). Array-likes
    are asked through ``__array__`` only (as check_array asks them)."""
    shape = getattr(X, "shape", None)
    if isinstance(shape, tuple):
        return shape
    try:
        return tuple(np.shape(X) if isinstance(X, (list, tuple)) else np.asarray(X).shape)
    except (ValueError, TypeError):
        return ()
