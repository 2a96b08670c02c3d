"""Training recipes the tests pin, so that a test about plumbing (schedules, resume,
pictures of LeNet's layers) does not move when the default recipe improves."""

#: the defaults before issue 15: LeNet-5, Adam at a constant 0.003, batches of 200,
#: no augmentation or label smoothing. Cheap and quick to fit in a few epochs.
LENET = dict(arch="lenet", learning_rate="constant", learning_rate_init=0.003,
             batch_size=200, augment=None, label_smoothing=0.0)


def lenet(**params):
    """A CNNClassifier on the ``LENET`` recipe; ``params`` override it."""
    from sklearn_cnn import CNNClassifier

    return CNNClassifier(**{**LENET, **params})
