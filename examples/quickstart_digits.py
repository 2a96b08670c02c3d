"""Quick start: LeNet on scikit-learn's 8x8 digits, inside a Pipeline and a grid search
====================================================================================

LeNet-5 (``CNNClassifier("lenet")``) learns the 1,797 8x8 digit images: fit, print
the network's layer table and the test accuracy. Then, as an ordinary scikit-learn
classifier, a CNN is the last step of a Pipeline that hands it flat pixel rows, and
``GridSearchCV`` tunes its learning rate. Run it with::

    python examples/quickstart_digits.py [--epochs 50]

Needs the core install only (numpy, scikit-learn): ``pip install sklearn-cnn``.
"""

import argparse

from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images


def main(epochs: int = 50) -> float:
    X, y = load_digits_images(return_X_y=True)            # (1797, 1, 8, 8) in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)

    clf = CNNClassifier("lenet", max_iter=epochs, random_state=0).fit(X_train, y_train)
    print(clf.summary())
    print(f"LeNet test accuracy: {clf.score(X_test, y_test):.3f}")

    # the estimator is an ordinary scikit-learn classifier: flat features from a
    # pipeline step are read as square one-channel images
    flatten = FunctionTransformer(lambda images: images.reshape(len(images), -1))
    pipe = make_pipeline(flatten, CNNClassifier(max_iter=epochs, random_state=0))
    search = GridSearchCV(pipe, {"cnnclassifier__learning_rate_init": [0.001, 0.003]},
                          cv=3)
    search.fit(X_train, y_train)
    print(f"best of the grid: {search.best_params_}, "
          f"test accuracy {search.score(X_test, y_test):.3f}")
    return search.score(X_test, y_test)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    main(parser.parse_args().epochs)
