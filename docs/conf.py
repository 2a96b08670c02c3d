"""Sphinx configuration of the sklearn-cnn documentation.

Build it with ``python3 tasks.py docs`` (warnings are errors): the API reference is
generated from the docstrings (numpydoc), and the gallery runs every script of
``examples/`` with small settings (:func:`reset_argv`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
# sphinx-gallery imports ``conf.reset_argv`` by name (a function in the configuration
# itself cannot be cached by Sphinx), so this folder must be importable
if str(DOCS) not in sys.path:
    sys.path.insert(0, str(DOCS))

import sklearn_cnn  # noqa: E402

# -- Project ---------------------------------------------------------------------------

project = "sklearn-cnn"
author = "the sklearn-cnn developers"
copyright = "the sklearn-cnn developers"
release = sklearn_cnn.__version__
version = ".".join(release.split(".")[:2])

# -- General ---------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"   # `x` is code, as ``x``
pygments_style = "sphinx"
# every reference to a name of this package must resolve ...
nitpicky = True
# ... while other projects' names cannot: there is no internet at build time, so no
# intersphinx inventories. Their types (and Python's own) are left as plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|sklearn|scipy|torch|torchvision|skorch|matplotlib|PIL|onnx"
               r"|onnxruntime|skl2onnx|skops|pandas|dask|joblib|mlflow)(\..*)?"),
    (r"py:.*", r"(typing|collections|collections\.abc|abc|os|pathlib|io|argparse"
               r"|dataclasses|enum|numbers|types)\..*"),
    (r"py:.*", r"(None|True|False|int|float|str|bool|bytes|dict|list|tuple|set|frozenset"
               r"|object|type|callable|Callable|Any|Sequence|Iterable|Iterator|Mapping"
               r"|ndarray|array-like|array|PathLike|Path|Generator|RandomState"
               r"|Figure|Axes|Module|NeuralNet|Tensor|dtype|ModelProto"
               r"|Ellipsis|NotImplemented|Exception|ValueError|TypeError|ImportError"
               r"|FileNotFoundError|RuntimeError|Warning|FutureWarning|UserWarning)"),
]

# -- autodoc, autosummary, numpydoc ----------------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "groupwise"}  # the class template adds members
autodoc_typehints = "none"     # the numpydoc sections give the types
autodoc_inherit_docstrings = True
autoclass_content = "class"
add_module_names = False       # signatures read CNNClassifier(...), not the full path
python_maximum_signature_line_length = 88

numpydoc_show_class_members = False   # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False


def _plain_refs_in_foreign_docstrings(app, what, name, obj, options, lines):
    """Docstrings inherited from scikit-learn (``get_params``, ``set_output``...)
    link to its user guide with ``:ref:`` labels that this site does not have:
    keep their text, drop the link."""
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn_cnn"):
        return
    pattern = re.compile(r":(?:ref|doc|term):`([^`<]*?)\s*(?:<[^`>]*>)?`")
    for i, line in enumerate(lines):
        lines[i] = pattern.sub(lambda m: f"*{m.group(1).strip()}*" if m.group(1).strip()
                               else "", line)


# -- HTML ------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-cnn {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": []}
html_context = {"default_mode": "light"}

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# -- Gallery ---------------------------------------------------------------------------

#: each example's command line in the gallery: settings small enough for two cores
#: (every example under a minute; the defaults are for a real run). sphinx-gallery
#: runs again only the examples whose file changed: after editing this table, remove
#: docs/auto_examples/ (or pass -D sphinx_gallery_conf.run_stale_examples=1)
GALLERY_ARGV = {
    "quickstart_digits.py": ["--epochs", "5"],
    "visualize_cnn.py": ["--epochs", "30", "--show"],
    "explain_predictions.py": ["--train-size", "3000", "--epochs", "8"],
    "rotation_regression.py": ["--train-size", "2000", "--test-size", "500",
                               "--epochs", "8"],
    "fashion_mnist_comparison.py": ["--epochs", "3", "--train-size", "1000",
                                    "--test-size", "1000"],
    "grid_search_pipeline.py": ["--epochs", "5", "--samples", "600"],
    "seed_exercises.py": ["--epochs", "10"],
    "train_torch_deploy_numpy.py": ["--epochs", "3"],
    "distributed_training.py": ["--epochs", "2"],
    "transfer_learning.py": ["--epochs", "30", "--draws", "2"],
}


def reset_argv(gallery_conf, script_vars) -> list[str]:
    """The arguments sphinx-gallery runs an example with (see :data:`GALLERY_ARGV`)."""
    name = Path(script_vars["src_file"]).name
    if name not in GALLERY_ARGV:
        raise KeyError(f"docs/conf.py: GALLERY_ARGV has no command line for {name}; "
                       "add one with settings that run in well under a minute")
    return list(GALLERY_ARGV[name])


sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/",               # run every example
    "ignore_pattern": r"__init__\.py",
    "reset_argv": "conf.reset_argv",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sklearn_cnn",),
    "backreferences_dir": "api/generated/backreferences",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "capture_repr": (),
    "only_warn_on_example_error": False,   # a failing example fails the build
    "download_all_examples": False,
    "default_thumb_file": None,
}

# -- The command line's help, as the installed parser prints it -------------------------


def _cli_help() -> None:
    """Write ``sklearn-cnn --help`` and each command's help to api/generated/, where
    api/cli.rst includes them: the reference shows what the parser says."""
    from sklearn_cnn.cli import main

    folder = DOCS / "api" / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"   # argparse wraps to the terminal's width
    try:
        for command in ("", "fit", "predict", "summary", "demo"):
            out = io.StringIO()
            argv = [command, "--help"] if command else ["--help"]
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                main(argv)
            _write_if_changed(folder / f"cli_help_{command or 'main'}.txt", out.getvalue())
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless ``path`` holds it already (keeps Sphinx's cache valid)."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _remove_stale_api_pages() -> None:
    """autosummary writes a page per documented name but never removes one: drop
    them all, so that a renamed or removed name leaves no orphan page behind (and
    changed docstrings are read again)."""
    for page in (DOCS / "api" / "generated").glob("*.rst"):
        page.unlink()


def setup(app) -> None:
    _remove_stale_api_pages()
    _cli_help()
    app.connect("autodoc-process-docstring", _plain_refs_in_foreign_docstrings)

# the page table of contents names methods as fit(), not CNNClassifier.fit() (they
# overflowed the sidebar), as scikit-learn's site does
toc_object_entries_show_parents = "hide"
