"""Determinism and concurrent prediction."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sklearn_cnn import CNNClassifier


def test_same_seed_same_weights_other_seed_other_weights(backend, digits):
    X, X_test, y, _ = digits
    fits = [CNNClassifier(backend=backend, max_iter=2, dropout=0.2, augment="shift",
                          random_state=seed).fit(X[:300], y[:300]) for seed in (7, 7, 8)]
    first, again, other = (f.get_weights() for f in fits)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert any(not np.array_equal(first[key], other[key]) for key in first)
    np.testing.assert_array_equal(fits[0].predict_proba(X_test), fits[1].predict_proba(X_test))


def test_predicting_from_four_threads_matches_sequential_calls(backend, digits):
    X, X_test, y, _ = digits
    clf = CNNClassifier(backend=backend, max_iter=2, random_state=0).fit(X[:300], y[:300])
    chunks = np.array_split(X_test, 8)
    # one call at a time, off the main thread as the four racing ones are
    with ThreadPoolExecutor(max_workers=1) as one:
        sequential = list(one.map(clf.predict_proba, chunks))
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(clf.predict_proba, chunks))
    for got, expected in zip(concurrent, sequential, strict=True):
        np.testing.assert_array_equal(got, expected)
    # The main thread's calls agree to float32's last bits: the NumPy backend runs
    # them with BLAS on one thread, other threads with BLAS's own (OpenBLAS's sums
    # differ with its thread count).
    in_main = [clf.predict_proba(chunk) for chunk in chunks]
    np.testing.assert_allclose(np.vstack(in_main), np.vstack(sequential), rtol=1e-5, atol=1e-7)
