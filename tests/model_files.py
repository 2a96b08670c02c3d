"""Small fitted models, and model files rewritten with a matching checksum, for the
tests of the file format and of loading."""

import json

import numpy as np


def tiny_model(labels=None):
    """A model small enough that its file can be damaged at every byte, and the
    images it was fitted on."""
    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.layers import Conv2d, GlobalAvgPool2d, Linear, ReLU

    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 4, 4)).astype(np.float32)
    y = np.arange(40) % 2 if labels is None else labels
    return CNNClassifier([Conv2d(2, 3), ReLU(), GlobalAvgPool2d(), Linear(2)], max_iter=1,
                         augment=None, random_state=0).fit(X, y), X


def rewrite(path, target, change):
    """Write ``target`` from ``path``'s arrays after ``change(arrays, meta)``, with a
    checksum that matches, so that only the consistency checks can refuse it."""
    from sklearn_cnn._format import checksum

    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    change(arrays, meta)
    write_with_checksum(target, meta, {k: v for k, v in arrays.items()
                                       if k not in ("meta", "checksum")}, checksum)


def write_with_checksum(target, meta, arrays, checksum=None):
    """An ``.npz`` of ``arrays``, ``meta`` as JSON and (unless ``checksum`` is False)
    the checksum of both."""
    if checksum is None:
        from sklearn_cnn._format import checksum
    encoded = json.dumps(meta).encode()
    arrays = dict(arrays)
    if checksum is not False:
        arrays["checksum"] = checksum(encoded, arrays)
    arrays["meta"] = np.frombuffer(encoded, dtype=np.uint8)
    np.savez(target, **arrays)
