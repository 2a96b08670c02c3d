"""The worked exercises of an introductory CNN course, answered with sklearn-cnn
=============================================================================

1. ReLU, and the edge-detection convolution of the "Convolution Mathematics" chapter.
2. Output size of a 28x28 input, 5x5 filter, padding 2, stride 1; and the other
   worked sizes.
3. The parameter-count table of the "common CNN architecture" (224, 1,168, 200,832,
   1,290; total 203,514), row by row, from the package's layer specs; and why its
   8x14x14 row does not follow from the rows above it.
4. LeNet-5, layer by layer.
5. Batch normalization: the same small network trained with and without it.

Run it with::

    python examples/seed_exercises.py [--epochs 10]

Needs the core install only (numpy, scikit-learn): ``pip install sklearn-cnn``.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier, conv_output_size, summary
from sklearn_cnn.backends.numpy import layers as numpy_layers
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from sklearn_cnn.summary import summarize_specs


def relu_and_edges() -> None:
    """Exercise 1 and the edge-detection example, on the NumPy backend's layers."""
    x = np.array([[-2.0, -0.5, 0.0, 1.5]])
    print("Exercise 1, ReLU:", x[0], "->", numpy_layers.Activation(ReLU()).forward(x, False)[0])

    image = np.zeros((1, 1, 5, 5), np.float32)
    image[0, 0, 1:4, 1:4] = 1.0                    # a 3x3 bright square
    kernel = -np.ones((1, 1, 3, 3), np.float32)
    kernel[0, 0, 1, 1] = 8.0                       # the course's edge-detection kernel
    conv = numpy_layers.Conv2d(Conv2d(1, 3), (1, 5, 5),
                               {"weight": kernel, "bias": np.zeros(1, np.float32)})
    edges = conv.forward(image, training=False)[0, 0]
    print("Edge detection, 5x5 square image * 3x3 kernel ->", edges.shape, "output:")
    print(edges.astype(int))


def output_sizes() -> None:
    """Exercise 2 and the texts' worked output sizes."""
    print("\nExercise 2: 28x28 input, 5x5 filter, padding 2, stride 1 -> "
          f"{conv_output_size(28, 5, p=2, s=1)}x{conv_output_size(28, 5, p=2, s=1)}")
    for n, f, p, s, where in [(32, 5, 2, 1, "worked example, 32x32 with 5x5"),
                              (5, 3, 0, 1, "a 3x3 filter on a 5x5 image"),
                              (28, 1, 0, 1, "a 1x1 convolution keeps the size"),
                              (28, 5, 0, 1, "LeNet's first convolution"),
                              (24, 2, 0, 2, "2x2 max pooling, stride 2")]:
        print(f"  {where:<34} floor(({n} + 2*{p} - {f}) / {s}) + 1 = "
              f"{conv_output_size(n, f, p, s)}")


#: the course's table: (row, input shape, specs, the course's number); rows 1-4 chain on
#: 3x32x32 with valid convolutions, rows 5 and 6 take the inputs they state
SEED_TABLE = [
    ("Conv Layer 1 (3x3, 3 channels, 8 filters)", (3, 32, 32), [Conv2d(8, 3)], 224),
    ("Pooling Layer 1", (8, 30, 30), [MaxPool2d(2)], 0),
    ("Conv Layer 2 (3x3, 8 channels, 16 filters)", (8, 15, 15), [Conv2d(16, 3)], 1168),
    ("Pooling Layer 2", (16, 13, 13), [MaxPool2d(2)], 0),
    ("Fully Connected (FC, 8x14x14 -> 128)", (8, 14, 14), [Flatten(), Linear(128)], 200832),
    ("Output Layer (128 -> 10 classes)", (128,), [Linear(10)], 1290),
]
SEED_TOTAL = 203514


def parameter_table() -> int:
    """Reproduce the course's parameter table row by row; return the total."""
    print("\nExercise 3, the course's parameter-count table from the layer specs: rows 1-4 "
          "as one chain on a 3x32x32 image, rows 5 and 6 on the inputs they state:")
    print("| layer | input | course | sklearn-cnn |")
    print("| --- | --- | --- | --- |")
    total = 0
    for row, in_shape, specs, seed in SEED_TABLE:
        count = summarize_specs(tuple(specs), in_shape).total_params
        assert count == seed, (row, count, seed)
        total += count
        print(f"| {row} | {'x'.join(map(str, in_shape))} | {seed:,} | {count:,} |")
    assert total == SEED_TOTAL
    print(f"| Total CNN Parameters | | {SEED_TOTAL:,} | {total:,} |")

    print("\nThe FC row's 8x14x14 does not follow from the rows above it (16 channels "
          "leave conv 2). It is what ONE 8-filter 3x3 convolution with padding 1 and one "
          "2x2 pool make of a 28x28 MNIST image, as in the course's skorch CNN:")
    one_conv = (Conv2d(8, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(128),
                ReLU(), Linear(10))
    print(summarize_specs(one_conv, (1, 28, 28)))
    print("\nThe two-convolution network the table describes, built consistently "
          "('simple', same padding, on 3x32x32), has a 16x8x8 -> 128 layer instead:")
    print(summary("simple", (3, 32, 32), n_classes=10))
    return total


def lenet5() -> None:
    """Exercise 4: LeNet-5 on 28x28 (its common MNIST form) and 32x32 (the 1998 paper)."""
    print("\nExercise 4, LeNet-5 on 28x28 (shapes 6x24x24, 6x12x12, 16x8x8, 16x4x4 as in "
          "the course's PyTorch comments):")
    print(summary("lenet", (1, 28, 28), n_classes=10))
    print(f"On 32x32 inputs (LeCun et al., 1998): "
          f"{summary('lenet', (1, 32, 32)).total_params:,} parameters")


def batch_norm(epochs: int) -> dict[tuple[str, bool], float]:
    """Exercise 5: the same LeNet on the digits with and without BatchNorm, once with
    ReLU and once with the sigmoid that the course warns about (vanishing gradients)."""
    X, y = load_digits_images(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    print(f"\nExercise 5, batch normalization: LeNet on the 8x8 digits, {epochs} epochs of "
          "Adam (default settings, batch size 64), same seed")
    print(summary("lenet", (1, 8, 8), batch_norm=True).rows[1].layer,
          "follows each convolution (which then has no bias: BatchNorm's shift replaces it)")
    accuracies = {}
    for activation in ("relu", "sigmoid"):
        for with_bn in (False, True):
            clf = CNNClassifier("lenet", activation=activation, batch_norm=with_bn,
                                batch_size=64, max_iter=epochs, random_state=0)
            clf.fit(X_train, y_train)
            accuracy = accuracies[activation, with_bn] = clf.score(X_test, y_test)
            curve = " ".join(f"{loss:.2f}" for loss in clf.loss_curve_)
            print(f"  activation={activation:<7} batch_norm={with_bn!s:<5}  test accuracy "
                  f"{accuracy:.3f}  training loss per epoch: {curve}")
    print("With ReLU both train. With sigmoid, the plain network's loss stays near chance "
          "(ln 10 = 2.30) for several epochs while the normalized one's falls from the "
          "start: BatchNorm keeps the sigmoid's inputs where its gradient does not vanish.")
    return accuracies


def main(epochs: int = 10) -> None:
    """Print every answer; ``epochs`` is the batch-normalization runs' length."""
    relu_and_edges()
    output_sizes()
    parameter_table()
    lenet5()
    batch_norm(epochs)
    print("\nThe course's CIFAR-10 competition: sklearn_cnn.datasets.load_cifar10() reads the "
          "'python version' batches (download=True fetches them with torchvision).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    main(args.epochs)
