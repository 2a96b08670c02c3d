"""The parameter documentation both estimators share, written once (with their
shared See Also and Notes sections).

``%(name)s`` in an estimator's docstring is replaced by the entry ``name`` of
:data:`PARAMETER_DOCS` (see :func:`fill_docstring`).
"""

from __future__ import annotations

#: the parameters both estimators take, documented once (``%(name)s`` in a class
#: docstring is replaced by the entry ``name`` of this table)
PARAMETER_DOCS = {
    "network": """\
    backend : {"numpy", "torch"}, default="numpy"
        What trains and runs the network: ``"numpy"``, written from scratch with no
        other dependency, or ``"torch"``, PyTorch through skorch (``pip install
        'sklearn-cnn[torch]'``). Both build the same network from the same specs
        and start from the same initial weights for the same ``random_state``.
    input_shape : tuple of int, default=None
        ``(C, H, W)`` (or ``(H, W)``) of one image. Needed to read flat ``(n, F)``
        input as images when ``F`` is not a square (rows of fewer than 64 values
        are read as one ``1 x F`` row of features); checked against image input.
    channels : {"auto", "first", "last"}, default="auto"
        Where the channel axis of 4-D input is. ``"auto"`` takes the last axis as
        channels when it has 1, 3 or 4 entries and the second axis has not.""",
    "optimizer": """\
    solver : {"adam", "sgd"}, default="adam"
        ``"sgd"`` uses ``momentum`` and ``nesterovs_momentum``.
    learning_rate_init : float, default=0.01
        Step size (with ``learning_rate="onecycle"``, the peak step size).
    alpha : float, default=0.0001
        L2 penalty on convolution and dense weights, added to the loss as
        ``0.5 * alpha * ||W||^2 / batch_size`` (as in the MLP estimators).
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"``: 128 images, fewer on small sets so that an
        epoch has at least 40 steps (``n_samples // 40``, at least 32, at most
        ``n_samples``): 35 on 1,437 digits.
    max_iter : int or "auto", default="auto"
        Number of epochs (passes over the training data). ``"auto"``: enough for
        about 2,500 optimizer steps, at least 15 and at most 50 epochs (50 on the
        1,797 digits, 32 on 10,000 images, 15 on 60,000).
    shuffle : bool, default=True
        Reshuffle the training data every epoch.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with SGD.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's moment decay rates and numerical guard.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, data order and dropout.
    verbose : int, default=0
        1 prints the network's summary, then one table row per epoch (epoch,
        training loss, validation score, learning rate, seconds); 2 adds a tqdm
        progress bar over each epoch's batches with the running loss (on stderr).
    warm_start : bool, default=False
        When True, ``fit`` continues from the fitted weights and optimizer state
        instead of starting afresh (same targets and image shape required). Unlike
        the MLP estimators, which restart their optimizer, a warm fit picks up where
        the last one stopped, as ``partial_fit`` does.
    learning_rate : {"constant", "invscaling", "adaptive", "cosine", "onecycle"}, \
default="onecycle"
        Learning-rate schedule over the epochs of ``fit`` (``partial_fit`` uses
        ``learning_rate_init``): the MLP estimators' three, plus a cosine decay to 0
        and Smith's one-cycle (warm-up to ``learning_rate_init`` over 30 % of the
        batches, then cosine decay), both updated every batch. Cosine and one-cycle
        plan to end at ``max_iter``, so reaching it raises no ConvergenceWarning.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.""",
    "stopping": """\
    n_iter_no_change : int, default=10
        Training stops after this many epochs without progress; if ``max_iter`` is
        reached first, a ConvergenceWarning says so (as in the MLP estimators).
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping (only with
        ``early_stopping=True``).""",
    "transfer": """\
    max_grad_norm : float, default=None
        Clip the global L2 norm of the gradients to this before each update.
    init_from : fitted estimator, FrozenEstimator, "imagenet", str or path-like, \
default=None
        The starting weights, whatever their source; every layer whose key and shape
        match is taken (the others start fresh):

        - a fitted ``CNNClassifier`` or ``CNNRegressor`` (or one wrapped in
          ``sklearn.frozen.FrozenEstimator``), on either backend: fine-tune a trained
          network on new targets or data; a classifier's convolutions can start a
          regressor. A fitted estimator survives ``clone``, so it works inside
          ``GridSearchCV`` as it is: every clone *shares* the one source (it is read,
          never changed), it is not copied;
        - the path of a model file written by :meth:`save`;
        - ``"imagenet"``: torchvision's ImageNet weights from the torch hub cache
          (``arch`` in ``"alexnet"``, ``"resnet18"``, ``"resnet34"``, ``"vgg11"``,
          ``"vgg16"``; VGG with ``batch_norm=True`` loads the ``_bn`` weights),
          never downloaded: a missing file raises an error saying where it was
          looked for and how to get it;
        - the path of a torchvision-format ``state_dict`` file (``.pth``), read with
          ``torch.load(weights_only=True)`` (a file holding pickled objects is
          refused).

        With ImageNet weights (the last two) the network is torchvision's exact
        ImageNet form; the output layer is replaced for the targets of ``y`` and
        grayscale images work as if repeated to 3 channels. Those weights expect
        images in [0, 1] normalised with ImageNet's channel means and standard
        deviations (``sklearn_cnn.pretrained.IMAGENET_MEAN`` / ``_STD``); see
        :mod:`sklearn_cnn.pretrained`. Reading them needs torch; training runs on
        either backend.
    pretrained : bool, default=False
        Deprecated: write ``init_from="imagenet"``.
    weights : str or path-like, default=None
        Deprecated: write ``init_from=path``.
    freeze : "features", int or None, default=None
        Keep leading layers fixed while training: ``"features"`` freezes every
        layer before the first dense one (fine-tune only the head of an
        ``init_from`` model), an int that many top-level layers.""",
    "architecture": """\
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where the torch backend trains and predicts (any torch device string);
        ``"auto"`` picks CUDA when available. The NumPy backend runs on the CPU.
    mixed_precision : {"bfloat16"} or None, default=None
        Torch backend only: train under ``torch.autocast`` in bfloat16 (products
        and convolutions in bfloat16, weights, optimizer and loss in float32): on
        a CPU with AVX-512 BF16, or an Ampere or newer GPU, about twice the training
        speed for an accuracy close to float32's. A CPU without AVX-512 BF16 or
        AMX can only emulate bfloat16, several times slower than float32 (6.4x on
        an AVX2 CPU): the fit warns there. Prediction stays float32.
    filters : tuple of int, default=None
        Convolution widths, one per stage (LeNet: ``(6, 16)``; VGG and ResNet: the
        widths of their stages). None keeps the architecture's own.
    kernel_size : int, default=None
        Convolution kernel size (``"lenet"``, ``"simple"``).
    hidden_units : tuple of int, default=None
        Widths of the dense layers before the output layer.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}, default=None
    pooling : {"max", "avg"}, default=None
    dropout : float, default=None
        Dropout rate in the dense head.
    batch_norm : bool, default=None
        BatchNorm after every convolution.
    width : float, default=None
        Multiplier of every convolution and dense width (``0.25`` for a narrow net).

        Each of these eight is passed to the architecture when set; one that the
        architecture does not take raises a ValueError that lists those it takes
        (``sklearn_cnn.architectures.architecture_parameters(name)``).""",
    "attributes": """\
    n_features_in_ : int
        Values per sample (``C * H * W``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when X was a DataFrame with string column names.
    input_shape_ : tuple of int
        ``(C, H, W)`` of the images the network was built for.
    specs_ : tuple of LayerSpec or None
        The network that was built, after adaptation to ``input_shape_`` (None for
        a custom ``torch.nn.Module``).
    network_ : FittedNetwork
        The trained network: its backend, model, specs, input shape and dtype, with
        the methods explanations, files and ONNX export go through (outputs, a
        layer's output, input gradients, weights, another backend's copy).
    model_ : object
        The backend's own model (``network_.model``): a ``Network`` for the NumPy
        backend, the skorch ``NeuralNet`` (with its ``history`` and ``module_``) for
        torch.
    loss_curve_ : list of float
        Mean training loss (L2 penalty included) of each epoch.
    best_loss_ : float or None
        Lowest training loss (without early stopping).
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen by the solver.""",
    "see_also": """\
    See Also
    --------
    sklearn_cnn.load : Read an estimator written by ``save``, without unpickling.
    sklearn_cnn.persistence.skops_trusted_types : The types to trust when loading an
        estimator, or a whole pipeline, saved with skops.
    sklearn_cnn.onnx.to_onnx : Export a fitted estimator or pipeline to ONNX.

    Notes
    -----
    ``skl2onnx.to_onnx(estimator, X[:1])`` converts a fitted estimator once this
    package's converters are registered with skl2onnx: ``import sklearn_cnn.onnx``
    registers them, and so does ``import sklearn_cnn`` as soon as skl2onnx is
    imported, before or after it (the package never imports skl2onnx itself);
    :func:`sklearn_cnn.onnx.to_onnx` registers them before it converts.""",
}


def fill_docstring(cls: type) -> type:
    """Class decorator: put the shared parameter descriptions into ``cls.__doc__``."""
    cls.__doc__ = cls.__doc__ % PARAMETER_DOCS
    return cls
