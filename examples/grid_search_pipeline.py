"""Grid search over a CNN's filter counts, inside a scikit-learn Pipeline
======================================================================

The CNN is one step of a Pipeline (a MinMaxScaler in front of it), and GridSearchCV
tunes its ``filters`` through the usual ``<step>__<parameter>`` names, exactly as it
would tune an MLPClassifier's ``hidden_layer_sizes``.

Run it with::

    python examples/grid_search_pipeline.py [--epochs 20] [--samples N]

Needs the core install only (numpy, scikit-learn): ``pip install sklearn-cnn``.
"""

from __future__ import annotations

import argparse
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_cnn import CNNClassifier

FILTERS = [(6, 16), (8, 16), (16, 32)]


def main(epochs: int = 20, samples: int | None = None) -> float:
    """Search ``FILTERS`` with 3-fold cross-validation; return the test accuracy.

    Parameters
    ----------
    epochs : int, default=20
        Epochs of every fit.
    samples : int, default=None
        Training images to use (all 1,347 when None).

    Returns
    -------
    float
        Test accuracy of the best pipeline, refitted on all the training images.
    """
    X, y = load_digits(return_X_y=True)          # flat (1797, 64), pixel values 0..16
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    if samples is not None and samples < len(X_train):
        X_train, _, y_train, _ = train_test_split(
            X_train, y_train, train_size=samples, stratify=y_train, random_state=0)

    # flat rows of 64 features are read as 8x8 one-channel images; input_shape says
    # so explicitly (needed for non-square images, documentation here)
    pipe = make_pipeline(MinMaxScaler(),
                         CNNClassifier("lenet", input_shape=(1, 8, 8), max_iter=epochs,
                                       random_state=0))
    search = GridSearchCV(pipe, {"cnnclassifier__filters": FILTERS}, cv=3)
    search.fit(X_train, y_train)

    print(f"{len(X_train)} training images, {epochs} epochs per fit, 3-fold CV\n")
    print("| filters | mean CV accuracy | std | mean fit seconds |")
    print("| --- | --- | --- | --- |")
    results = search.cv_results_
    for i, params in enumerate(results["params"]):
        print(f"| {params['cnnclassifier__filters']} | "
              f"{results['mean_test_score'][i]:.3f} | {results['std_test_score'][i]:.3f} | "
              f"{results['mean_fit_time'][i]:.1f} |")
    accuracy = search.score(X_test, y_test)
    print(f"\nbest params: {search.best_params_}")
    print(f"test accuracy of the refitted best pipeline: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=None,
                        help="training images (default: all; 300 when --epochs < 5)")
    args = parser.parse_args()
    if args.samples is None and args.epochs < 5:  # a quick smoke run
        args.samples = 300
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs on purpose
    main(args.epochs, args.samples)
