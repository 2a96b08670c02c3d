"""Command line: ``python -m sklearn_cnn`` (also the ``sklearn-cnn`` script).

Its commands::

    sklearn-cnn fit FOLDER --out MODEL [--arch --epochs --backend --size --seed]
    sklearn-cnn predict MODEL FILE_OR_FOLDER... [--proba] [--format text|csv]
    sklearn-cnn summary ARCH --input-shape 3x32x32 [--classes 10]
    sklearn-cnn demo [--backend --arch --epochs --seed]
    sklearn-cnn --version

An error is one line on stderr and exit status 1 (2 for a misspelt command line).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import warnings

from sklearn.exceptions import ConvergenceWarning

from .architectures import list_architectures
from .backends import BACKENDS


def demo(backend: str = "numpy", arch: str = "auto", epochs: int | None = None,
         seed: int = 0) -> float:
    """Train on scikit-learn's bundled digits and report held-out accuracy.

    The 1,797 8x8 digit images are scaled to [0, 1] (float32); a stratified 25 % is held out
    (fixed seed). Prints the network, one line per epoch, then accuracy and wall
    time. Returns the accuracy.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from . import CNNClassifier

    start = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    X = (X.reshape(-1, 8, 8) / 16.0).astype("float32")  # float32: what images train in
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8; "
          f"arch={arch}, backend={backend}")
    clf = CNNClassifier(arch, backend=backend, random_state=seed, verbose=1)
    if epochs is not None:
        clf.set_params(max_iter=epochs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X_train, y_train)
    for warning in caught:
        print(f"note: {warning.message}")
    accuracy = clf.score(X_test, y_test)
    print(f"held-out accuracy: {accuracy:.4f}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return accuracy


#: the largest image side the command line takes (a typo's 99999999999 would ask for
#: more memory than any machine has)
MAX_SIDE = 16384


def _shape(text: str) -> tuple[int, ...]:
    """``"3x32x32"`` or ``"28x28"`` or ``"28"`` -> a tuple of ints."""
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 3x32x32") from None
    if not values or len(values) > 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 3x32x32")
    if max(values) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"{text!r}: sides of at most {MAX_SIDE} pixels")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def _check_out(out: str) -> None:
    """Refuse, before any training, a model path that could not be written at the end:
    a folder, or a file in a folder that does not exist or cannot be written."""
    if os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a folder; give a file name such as "
                         f"{os.path.join(out, 'model.npz')!r}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"--out {out!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--out {out!r}: the folder {folder!r} is not writable")


def fit(folder: str, out: str, *, arch: str = "auto", epochs: int | None = None,
        backend: str = "numpy", size: tuple[int, ...] | None = None, seed: int = 0) -> None:
    """Train on a folder with one sub-folder per class and save the model to ``out``."""
    from . import CNNClassifier
    from .datasets import load_image_folder

    if size is not None and len(size) == 3:
        raise ValueError("--size is HxW (or one number for square images), not CxHxW")
    if size is not None and len(size) == 1:
        size = size * 2  # one number is a square: --size 28 is 28x28
    _check_out(out)
    start = time.perf_counter()
    # decoded a batch at a time while training: a folder larger than memory trains
    images = load_image_folder(folder, size=size, lazy=True)
    print(f"{folder}: {len(images.target)} images of {images.data.shape[1:]} (C, H, W) in "
          f"{len(images.target_names)} classes: {', '.join(images.target_names)}")
    print(f"image size: {images.DESCR.partition(' images of ')[2].rstrip('.')}")
    labels = [images.target_names[t] for t in images.target]
    clf = CNNClassifier(arch, backend=backend, random_state=seed, verbose=1)
    if epochs is not None:
        clf.set_params(max_iter=epochs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(images.data, labels)
    for warning in caught:
        print(f"note: {warning.message}")
    clf.save(out)
    print(f"training accuracy {clf.score(images.data, labels):.4f}; saved {out} "
          f"({time.perf_counter() - start:.1f} s)")


def _image_files(paths: list[str]) -> list[str]:
    """The image files to predict: a file as given; a folder's image files and those
    of its sub-folders one level down (the layout ``fit`` reads: one sub-folder per
    class), sorted by path. Hidden files and folders, and files whose ending is not
    an image's, are skipped; a folder without any image file is an error."""
    from .preprocessing import IMAGE_SUFFIXES

    def images_in(folder: str) -> list[str]:
        return sorted(entry.path for entry in os.scandir(folder)
                      if not entry.name.startswith(".") and entry.is_file()
                      and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES)

    files = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = images_in(path)
        for entry in sorted(os.scandir(path), key=lambda entry: entry.name):
            if entry.is_dir() and not entry.name.startswith("."):
                found += images_in(entry.path)
        if not found:
            raise ValueError(f"{path!r} holds no image files, in itself or in its "
                             f"sub-folders (files ending in {', '.join(IMAGE_SUFFIXES)})")
        files += found
    return files


def predict(model: str, files: list[str], *, proba: bool = False,
            output_format: str = "text", stream=None) -> None:
    """Print each file's predicted label and its probability (all classes' with
    ``proba``), as aligned text or CSV; a regressor's predicted values. A folder
    among ``files`` stands for its image files and those of its sub-folders one level
    down (the layout ``fit`` reads), sorted by path."""
    from .persistence import load
    from .preprocessing import ImageLoader

    stream = sys.stdout if stream is None else stream
    files = _image_files(files)
    clf = load(model)
    channels, height, width = clf.input_shape_
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None:
        raise ValueError(f"{model} takes {channels}-channel images, which no image file has")
    # decoded pass by pass: any number of files
    images = ImageLoader(size=(height, width), mode=mode, lazy=True).fit_transform(files)
    if not hasattr(clf, "predict_proba"):  # a regressor: its values
        values = clf.predict(images).reshape(len(files), -1)
        header = ["file", *(["value"] if values.shape[1] == 1 else
                            [f"value{i}" for i in range(values.shape[1])])]
        rows = [[file, *(f"{v:.6g}" for v in row)]
                for file, row in zip(files, values, strict=True)]
        _print_table(header, rows, output_format, stream)
        return
    probabilities = clf.predict_proba(images)
    labels = clf.classes_[probabilities.argmax(axis=1)]
    header = ["file", "label", "probability"]
    if proba:
        header += [f"p({label})" for label in clf.classes_]
    rows = []
    for file, label, p in zip(files, labels, probabilities, strict=True):
        row = [file, str(label), f"{p.max():.4f}"]
        rows.append(row + [f"{v:.4f}" for v in p] if proba else row)
    _print_table(header, rows, output_format, stream)


def _print_table(header: list[str], rows: list[list[str]], output_format: str,
                 stream) -> None:
    """Rows as CSV or as aligned text."""
    if output_format == "csv":
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(),
              file=stream)


def summary(arch: str, input_shape: tuple[int, ...], classes: int = 10) -> None:
    """Print the layer table of ``arch`` for images of ``input_shape``."""
    from .summary import summary as table

    print(table(arch, input_shape if len(input_shape) == 3 else (1, *input_shape[-2:]),
                n_classes=classes))


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sklearn-cnn", description="Convolutional neural networks as scikit-learn "
        "estimators: train on a folder of images, label image files, show a network's "
        "layers, or run the digits demo.")
    parser.add_argument("--version", action="version", version=f"sklearn-cnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="train a CNN on the bundled digits")
    run.add_argument("--backend", default="numpy", choices=sorted(BACKENDS),
                     help="what trains the network (default: numpy)")
    run.add_argument("--arch", default="auto", choices=list_architectures(),
                     help="the architecture (default: auto, sized to the images)")
    run.add_argument("--epochs", type=_positive, default=None,
                     help="epochs to train (default: CNNClassifier's max_iter)")
    run.add_argument("--seed", type=int, default=0,
                     help="seeds the split, the weights and the batch order (default: 0)")
    train = commands.add_parser("fit", help="train on a folder of images, one sub-folder "
                                            "per class, and save the model")
    train.add_argument("folder", help="a folder with one sub-folder of images per class")
    train.add_argument("--out", required=True, help="model file to write (.npz)")
    train.add_argument("--arch", default="auto", choices=list_architectures(),
                       help="the architecture (default: auto, sized to the images)")
    train.add_argument("--epochs", type=_positive, default=None,
                       help="epochs to train (default: CNNClassifier's max_iter)")
    train.add_argument("--backend", default="numpy", choices=sorted(BACKENDS),
                       help="what trains the network (default: numpy)")
    train.add_argument("--size", type=_shape, default=None,
                       help="HxW every image is resized to (default: the training images' "
                            "size, or their median size when they differ)")
    train.add_argument("--seed", type=int, default=0,
                       help="seeds the weights and the batch order (default: 0)")
    guess = commands.add_parser("predict", help="label image files with a saved model")
    guess.add_argument("model", help="a model file written by fit (.npz)")
    guess.add_argument("files", nargs="+", metavar="file_or_folder",
                       help="the image files to label; a folder stands for its image files "
                            "and those of its sub-folders one level down (the layout fit "
                            "reads), sorted by path")
    guess.add_argument("--proba", action="store_true", help="every class's probability")
    guess.add_argument("--format", choices=["text", "csv"], default="text",
                       help="aligned text or CSV (default: text)")
    table = commands.add_parser("summary", help="layer table of an architecture")
    table.add_argument("arch", help="a registered architecture (lenet, resnet18...)")
    table.add_argument("--input-shape", type=_shape, default=(1, 28, 28),
                       help="CxHxW (or HxW) of one image, e.g. 3x32x32")
    table.add_argument("--classes", type=_positive, default=10,
                       help="width of the output layer (default: 10)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            demo(args.backend, args.arch, args.epochs, args.seed)
        elif args.command == "fit":
            fit(args.folder, args.out, arch=args.arch, epochs=args.epochs,
                backend=args.backend, size=args.size, seed=args.seed)
        elif args.command == "predict":
            predict(args.model, args.files, proba=args.proba, output_format=args.format)
        else:
            summary(args.arch, args.input_shape, args.classes)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        message = " ".join(str(exc).split())  # one line
        print(f"sklearn-cnn {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sklearn-cnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
