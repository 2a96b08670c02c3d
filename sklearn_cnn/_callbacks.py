"""scikit-learn's callbacks (``sklearn.callback``, scikit-learn 1.9 and later) for the
CNN estimators: ``ProgressBar``, ``ScoringMonitor`` and any ``FitCallback``.

A fit is one task whose subtasks are its epochs, so a ``ProgressBar`` over a
``GridSearchCV`` goes down to each CNN's epochs, and a ``ScoringMonitor`` scores the
network at the end of every epoch (on the data the fit was given). Set them with
``estimator.set_callbacks(...)``. With an older scikit-learn the estimators simply
have no callbacks.
"""

from __future__ import annotations

import copy

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # scikit-learn before 1.9: no callbacks to call
    class _NoContext:
        def subcontext(self, **kwargs):
            return self

        def call_on_fit_task_begin(self, **kwargs):
            return self

        def call_on_fit_task_end(self, **kwargs):
            return False

    class CallbackSupportMixin:  # type: ignore[no-redef]
        def _init_callback_context(self, **kwargs):
            return _NoContext()

    def with_callbacks(method):  # type: ignore[no-redef]
        return method

__all__ = ["CallbackSupportMixin", "FitCallbacks", "with_callbacks"]


class FitCallbacks:
    """The callback contexts of one fit: the fit's task, one subtask per epoch.

    ``X`` and ``y`` are what the fit was given (a ``ScoringMonitor`` scores on them);
    ``fitted(records)`` is the fitted state after the epochs recorded so far, as
    attributes by name (the estimator a callback sees is the estimator with them).
    """

    def __init__(self, estimator, epochs: int, X, y, fitted):
        self.estimator, self.data, self.fitted = estimator, {"X": X, "y": y}, fitted
        self.task = estimator._init_callback_context(task_name="fit", max_subtasks=epochs)
        self.task.call_on_fit_task_begin(estimator=estimator, **self.data)
        self.epoch = None

    def epoch_begin(self, epoch: int) -> None:
        self.epoch = self.task.subcontext(task_name="epoch")
        self.epoch.call_on_fit_task_begin(estimator=self.estimator, **self.data)

    def epoch_end(self, records: list) -> bool:
        """Whether a callback asks training to stop after this epoch."""
        return bool(self.epoch.call_on_fit_task_end(
            estimator=self.estimator, reconstruction_attributes=self.fitted(records),
            **self.data))

    def end(self) -> None:
        self.task.call_on_fit_task_end(estimator=self.estimator,
                                       reconstruction_attributes={}, **self.data)


def fitted_attributes(estimator, set_fitted) -> dict:
    """The fitted attributes ``set_fitted(copy)`` gives a shallow copy of
    ``estimator``: what a callback's estimator needs to predict mid-fit."""
    fitted = copy.copy(estimator)
    set_fitted(fitted)
    return {name: value for name, value in vars(fitted).items() if name.endswith("_")}
