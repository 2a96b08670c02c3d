import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py


@pytest.fixture(scope="session")
def digits():
    """sklearn's bundled digits as (n, 8, 8) images in [0, 1], split 75/25 stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 8, 8) / 16.0
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
