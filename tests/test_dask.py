"""Hyperparameter search beyond one machine: joblib's Dask backend on a real cluster.

The cluster here is a ``distributed.LocalCluster`` of two worker processes on the
loopback interface; pointing the same code at a real scheduler only changes the
``Client`` address (see README).
"""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
from recipes import LENET  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from sklearn_cnn import CNNClassifier  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def test_grid_search_runs_on_a_dask_cluster(client, digits):
    """One backend: what travels to the workers is the estimator, pickled as any
    backend's is (the torch backend's fits in worker processes: test_sklearn_integration)."""
    X_train, X_test, y_train, y_test = digits
    search = GridSearchCV(CNNClassifier(max_iter=8, random_state=0, **LENET),
                          {"filters": [(4, 8), (8, 16)]}, cv=2)
    with joblib.parallel_config(backend="dask"):
        search.fit(X_train[:500], y_train[:500])
    assert len(search.cv_results_["params"]) == 2
    assert search.best_score_ > 0.8 and search.score(X_test, y_test) > 0.8
    # the fits ran in the cluster's two worker processes: both logged task transitions
    transitions = client.run(lambda dask_worker: len(dask_worker.state.log))
    assert len(transitions) == 2 and all(count > 0 for count in transitions.values())
    assert np.isfinite(search.cv_results_["mean_fit_time"]).all()
