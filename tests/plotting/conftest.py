"""Fixtures of the plotting tests: matplotlib on the Agg backend, figures closed after
each test, and one fitted LeNet shared by every module."""

import sys
from pathlib import Path

import pytest

try:
    import matplotlib
except ImportError:  # each test module skips itself
    matplotlib = None
else:
    matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).parent))  # pictures.py

N_TRAIN = 300


@pytest.fixture(autouse=True)
def close_figures():
    yield
    if matplotlib is not None:
        import matplotlib.pyplot as plt

        plt.close("all")


@pytest.fixture(scope="session")
def lenet(digits):
    """LeNet (conv 6@5x5, ReLU, conv 16@5x5, ReLU, pool, dense...) after 2 epochs, with
    early stopping so it has validation scores."""
    from recipes import LENET

    from sklearn_cnn import CNNClassifier

    X_train, _, y_train, _ = digits
    return CNNClassifier(max_iter=2, early_stopping=True, random_state=0, **LENET).fit(
        X_train[:N_TRAIN], y_train[:N_TRAIN])
