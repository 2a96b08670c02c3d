"""sklearn_cnn._onnx_hook: ``skl2onnx.to_onnx`` converts the estimators once both
packages are imported, in either order, while ``import sklearn_cnn`` alone imports
neither skl2onnx nor onnx. Each case runs in a fresh interpreter, where nothing has
been imported yet."""

import subprocess
import sys

import pytest

pytest.importorskip("skl2onnx")

CONVERT = """
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn_cnn import CNNClassifier, CNNRegressor
X = np.random.default_rng(0).random((20, 64), dtype=np.float32)
clf = CNNClassifier("lenet", max_iter=1, random_state=0).fit(X, np.arange(20) % 2)
pipe = make_pipeline(MinMaxScaler(), CNNRegressor("lenet", max_iter=1, random_state=0))
pipe.fit(X, np.arange(20.0))
for model, outputs in ((clf, ["output_label", "output_probability"]), (pipe, ["variable"])):
    graph = skl2onnx.to_onnx(model, X[:1])
    assert [output.name for output in graph.graph.output] == outputs, graph.graph.output
# skl2onnx keeps its own loader: nothing of the hook stays behind
from sklearn_cnn._onnx_hook import _RegisteringLoader
assert not isinstance(skl2onnx.__spec__.loader, _RegisteringLoader), skl2onnx.__spec__
assert skl2onnx.__loader__ is skl2onnx.__spec__.loader
print("converted")
"""


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("imports", [
    "import sklearn_cnn\nimport skl2onnx",
    "import skl2onnx\nimport sklearn_cnn",
    "import sklearn_cnn\nfrom skl2onnx import to_onnx\nimport skl2onnx",
], ids=["sklearn_cnn first", "skl2onnx first", "from-import"])
def test_skl2onnx_converts_the_estimators_whatever_the_import_order(imports):
    result = python(imports + "\n" + CONVERT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "converted"


def test_importing_sklearn_cnn_imports_neither_skl2onnx_nor_onnx():
    result = python("""
import sys
import sklearn_cnn
from sklearn_cnn._onnx_hook import _AfterSkl2onnx, register_when_skl2onnx_is_imported
assert "skl2onnx" not in sys.modules and "onnx" not in sys.modules
assert "sklearn_cnn.onnx" not in sys.modules
register_when_skl2onnx_is_imported()  # again: still one finder
assert sum(isinstance(f, _AfterSkl2onnx) for f in sys.meta_path) == 1
import json  # other imports pass the finder by
assert "skl2onnx" not in sys.modules
import skl2onnx
assert "sklearn_cnn.onnx" in sys.modules
print("ok")
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_converter_that_cannot_register_warns_and_skl2onnx_still_imports():
    result = subprocess.run([sys.executable, "-c", """
import sys, warnings
import sklearn_cnn
sys.modules["sklearn_cnn.onnx"] = None  # as if the converters could not be imported
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import skl2onnx
print(skl2onnx.__name__, [str(w.message) for w in caught if "sklearn_cnn" in str(w.message)])
"""], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("skl2onnx ['sklearn_cnn could not register its ONNX "
                                    "converters with skl2onnx (ModuleNotFoundError")
