"""scikit-learn's own estimator checks, every one of them, for both estimators on both
backends.

No ``expected_failed_checks``: a check that fails here is a bug. The per-backend
counts are printed at the end of the test run (see ``conftest.py``).
"""

import importlib.util

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cnn import CNNClassifier, CNNRegressor

ESTIMATORS = [CNNClassifier(), CNNRegressor()]
if importlib.util.find_spec("skorch") is not None:
    ESTIMATORS += [CNNClassifier(backend="torch"), CNNRegressor(backend="torch")]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
