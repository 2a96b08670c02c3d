"""Shared parameter documentation (_docs.py): every estimator parameter is documented."""

import inspect
import re

import numpy as np
import pytest

from sklearn_cnn import CNNClassifier, CNNRegressor
from sklearn_cnn._docs import PARAMETER_DOCS, fill_docstring


def section(doc: str, title: str) -> str:
    """The body of a numpydoc section (``title`` over a rule of dashes)."""
    match = re.search(rf"^ *{title}\n *-+\n(.*?)(?=^ *\w[\w ]*\n *-+\n|\Z)", doc,
                      flags=re.M | re.S)
    assert match, f"no {title} section"
    return match.group(1)


def documented(body: str) -> set[str]:
    """Names of the entries of a section: ``name : type`` lines at the first indent,
    ``a, b, c : type`` naming several."""
    names = set()
    for line in body.splitlines():
        entry = re.match(r"^ {4}(\w[\w, ]*?) :", line)
        if entry:
            names.update(name.strip() for name in entry.group(1).split(","))
    return names


@pytest.mark.parametrize("cls", [CNNClassifier, CNNRegressor])
def test_every_init_parameter_is_documented(cls):
    parameters = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert parameters == set(cls().get_params())
    described = documented(section(cls.__doc__, "Parameters"))
    assert parameters - described == set(), "undocumented"
    assert described - parameters == set(), "documented but not a parameter"


@pytest.mark.parametrize("cls", [CNNClassifier, CNNRegressor])
def test_every_shared_entry_was_filled_in(cls):
    assert "%(" not in cls.__doc__
    for name, text in PARAMETER_DOCS.items():
        assert text in cls.__doc__, name


@pytest.mark.parametrize("cls", [CNNClassifier, CNNRegressor])
def test_the_documented_attributes_are_what_fit_sets(cls):
    attributes = documented(section(cls.__doc__, "Attributes"))
    assert {"network_", "model_", "specs_", "input_shape_", "loss_curve_", "n_iter_",
            "t_"} <= attributes
    estimator = cls("lenet", width=0.25, max_iter=1, random_state=0)
    assert not [name for name in attributes if hasattr(estimator, name)]
    X = np.random.default_rng(0).random((20, 8, 8), dtype=np.float32)
    estimator.fit(X, np.arange(20) % 2)
    # feature_names_in_ only after a DataFrame with string column names
    assert [name for name in attributes if not hasattr(estimator, name)] == [
        "feature_names_in_"]


#: a docstring laid out as the estimators' are, one shared entry to fill in
EXAMPLE = """An example.

    Parameters
    ----------
    own : int
%(stopping)s

    Attributes
    ----------
    own_ : int
    """


def test_fill_docstring_puts_the_shared_entries_in():
    example = fill_docstring(type("Example", (), {"__doc__": EXAMPLE}))
    assert "%(" not in example.__doc__
    assert documented(section(example.__doc__, "Parameters")) == {
        "own", "n_iter_no_change", "validation_fraction"}
