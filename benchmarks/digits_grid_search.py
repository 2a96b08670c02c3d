"""A grid search over filter counts on sklearn's digits: best 3-fold CV score per backend.

    .venv/bin/python benchmarks/digits_grid_search.py [--backend numpy]

GridSearchCV(make_pipeline(MinMaxScaler(), CNNClassifier()), filters in
{(6, 16), (8, 16), (16, 32)}, cv=3, n_jobs=2) on the 1,797 flat digit rows (read as
8x8 images). The folds are scikit-learn's default unshuffled StratifiedKFold, which
tests across writers: harder than a random split.
"""

import argparse
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_cnn import CNNClassifier
from sklearn_cnn.backends import BACKENDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), action="append")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    for backend in args.backend or sorted(BACKENDS):
        start = time.perf_counter()
        search = GridSearchCV(make_pipeline(MinMaxScaler(), CNNClassifier(backend=backend)),
                              {"cnnclassifier__filters": [(6, 16), (8, 16), (16, 32)]},
                              cv=3, n_jobs=2).fit(X, y)
        scores = " ".join(f"{s:.3f}" for s in search.cv_results_["mean_test_score"])
        print(f"{backend:>6}: best CV {search.best_score_:.3f} with "
              f"{search.best_params_['cnnclassifier__filters']} (all: {scores}), "
              f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
