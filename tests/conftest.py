import sys
from pathlib import Path

import pytest

from sklearn_cnn.backends import BACKENDS

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    """Each backend in turn; the torch one only where torch and skorch are installed."""
    if request.param == "torch":
        pytest.importorskip("skorch")
    return request.param


@pytest.fixture(scope="module")
def one_thread():
    """BLAS and torch on one thread each, for a module that asks
    (``pytestmark = pytest.mark.usefixtures("one_thread")``): on two shared cores their
    spinning worker threads made fits and parity checks several times slower
    (measured: resnet18's forward and backward 1.2-4.5 s against 0.1-0.3 s), and how
    many threads compute is not what those tests test
    (tests/backends/numpy/test_backend.py tests BLAS's threads)."""
    from threadpoolctl import threadpool_limits

    try:
        import torch
    except ImportError:  # the NumPy backend alone
        torch = None
    threads = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if torch:
            torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits():
    """sklearn's bundled digits as float32 (n, 8, 8) images in [0, 1], split 75/25
    stratified (float32, as images usually come: float64 would train in float64)."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X.reshape(-1, 8, 8) / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def pytest_terminal_summary(terminalreporter):
    """Print how many of scikit-learn's estimator checks passed, per backend."""
    counts = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if ("test_sklearn_contract.py" not in nodeid
                    or getattr(report, "when", "call") not in ("call", "setup")):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            backend = "torch" if "backend='torch'" in nodeid else "numpy"
            estimator = "CNNRegressor" if "CNNRegressor(" in nodeid else "CNNClassifier"
            key = (estimator, backend)
            counts.setdefault(key, {}).setdefault(outcome, 0)
            counts[key][outcome] += 1
    if counts:
        terminalreporter.write_sep("-", "scikit-learn estimator checks")
        for (estimator, backend), by_outcome in sorted(counts.items()):
            summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(by_outcome.items()))
            terminalreporter.write_line(f"check_estimator({estimator}), backend={backend}: "
                                        f"{summary}")
