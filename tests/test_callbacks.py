"""sklearn_cnn._callbacks: scikit-learn's callbacks see a CNN fit as a task of epochs."""

import numpy as np
import pytest

callback = pytest.importorskip("sklearn.callback")

from sklearn.model_selection import GridSearchCV  # noqa: E402

from sklearn_cnn import CNNClassifier  # noqa: E402
from sklearn_cnn.datasets import load_digits_images  # noqa: E402


@pytest.fixture(scope="module")
def digits200():
    X, y = load_digits_images(return_X_y=True)
    return X[:200], y[:200]


class StopAfter:
    """A FitCallback that asks to stop after ``epochs`` epochs, and records what it
    was told."""

    def __init__(self, epochs):
        self.epochs, self.seen = epochs, []

    def setup(self, estimator, context):
        self.seen.append("setup")

    def teardown(self, estimator, context):
        self.seen.append("teardown")

    def on_fit_task_begin(self, estimator, context, **kwargs):
        self.seen.append(f"begin {context.task_name}")

    def on_fit_task_end(self, estimator, context, *, X=None, fitted_estimator=None,
                        **kwargs):
        self.seen.append(f"end {context.task_name}")
        if context.task_name == "epoch":
            # the estimator as fitted so far predicts
            assert fitted_estimator.n_iter_ == context.task_id + 1
            assert fitted_estimator.predict(X[:3]).shape == (3,)
            return context.task_id + 1 >= self.epochs
        return False


def test_scoring_monitor_scores_every_epoch(digits200, backend):
    X, y = digits200
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = CNNClassifier("lenet", backend=backend, max_iter=3, random_state=0)
    clf.set_callbacks(monitor).fit(X, y)
    log = monitor.get_logs()
    rows = (log[0] if isinstance(log, list) else log).data
    epochs = [row for row in rows if row["task_name"] == "epoch"]
    assert [row["task_id"] for row in epochs] == [0, 1, 2]
    assert epochs[-1]["accuracy"] == pytest.approx(clf.score(X, y))
    reference = CNNClassifier("lenet", backend=backend, max_iter=3, random_state=0).fit(X, y)
    for key, value in reference.get_weights().items():  # callbacks change nothing
        np.testing.assert_array_equal(clf.get_weights()[key], value)


def test_a_callback_can_stop_training(digits200):
    X, y = digits200
    stopper = StopAfter(2)
    clf = CNNClassifier("lenet", max_iter=5, random_state=0).set_callbacks(stopper).fit(X, y)
    assert clf.n_iter_ == 2
    assert stopper.seen == ["setup", "begin fit", "begin epoch", "end epoch", "begin epoch",
                            "end epoch", "end fit", "teardown"]


class EpochCounter(StopAfter):
    """Auto-propagated, as ProgressBar is: a meta-estimator hands it to the CNNs."""

    max_propagation_depth = None

    def __init__(self):
        super().__init__(epochs=10**9)


def test_callbacks_reach_the_cnn_inside_a_grid_search(digits200):
    X, y = digits200
    counter = EpochCounter()
    search = GridSearchCV(CNNClassifier("lenet", max_iter=2, random_state=0),
                          {"alpha": [0.0, 0.001]}, cv=2).set_callbacks(counter)
    search.fit(X, y)
    # 2 candidates x 2 folds + the refit, 2 epochs each
    assert counter.seen.count("end epoch") == 10


def test_estimators_with_callbacks_still_save_and_pickle(digits200, tmp_path):
    import pickle

    from sklearn_cnn import load

    X, y = digits200
    clf = CNNClassifier("lenet", max_iter=1, random_state=0)
    clf.set_callbacks(StopAfter(1)).fit(X, y)
    clf.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(load(tmp_path / "m.npz").predict(X), clf.predict(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict(X), clf.predict(X))


# -- inside a Pipeline: scikit-learn 1.9 propagates auto-propagated callbacks (such as
# ProgressBar) from the pipeline to its steps; a ScoringMonitor is set on the CNN step
# itself, and scores it on the data that step is given (the transformed images)


# the package's image transformers take no callbacks: scikit-learn says so, and passes
# the progress bar on to the steps that do
@pytest.mark.filterwarnings("ignore:The estimator ChannelStandardizer does not support "
                            "callbacks:UserWarning")
def test_progress_bar_on_a_pipeline_follows_the_cnns_epochs(digits200, capsys):
    pytest.importorskip("rich")
    from sklearn.pipeline import make_pipeline

    from sklearn_cnn.preprocessing import ChannelStandardizer

    X, y = digits200
    pipeline = make_pipeline(ChannelStandardizer(),
                             CNNClassifier("lenet", max_iter=3, random_state=0))
    pipeline.set_callbacks(callback.ProgressBar()).fit(X, y)
    bars = [line for line in capsys.readouterr().out.splitlines() if "%" in line]
    assert any("Pipeline - fit" in bar for bar in bars)
    cnn_bar = next(bar for bar in bars if "CNNClassifier - fit" in bar)
    assert "100%" in cnn_bar  # the CNN's three epochs all ended
    plain = make_pipeline(ChannelStandardizer(),
                          CNNClassifier("lenet", max_iter=3, random_state=0)).fit(X, y)
    np.testing.assert_array_equal(pipeline.predict_proba(X), plain.predict_proba(X))


def test_scoring_monitor_on_the_cnn_step_of_a_pipeline(digits200):
    from sklearn.pipeline import make_pipeline

    from sklearn_cnn.preprocessing import ChannelStandardizer

    X, y = digits200
    monitor = callback.ScoringMonitor(scoring="accuracy")
    pipeline = make_pipeline(ChannelStandardizer(),
                             CNNClassifier("lenet", max_iter=3, random_state=0))
    pipeline.named_steps["cnnclassifier"].set_callbacks(monitor)
    pipeline.fit(X, y)
    log = monitor.get_logs()
    rows = (log[0] if isinstance(log, list) else log).data
    epochs = [row for row in rows if row["task_name"] == "epoch"]
    assert [row["task_id"] for row in epochs] == [0, 1, 2]
    assert {row["estimator_name"] for row in epochs} == {"CNNClassifier"}
    assert len({row["task_id_path"][:-1] for row in epochs}) == 1  # one fit: the pipeline's
    # scored on what the step was given: the standardized images
    assert epochs[-1]["accuracy"] == pytest.approx(pipeline.score(X, y))
    assert epochs[0]["accuracy"] < epochs[-1]["accuracy"]
