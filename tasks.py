#!/usr/bin/env python3
"""Set up a local .venv and run the demo, the test suite or the documentation build.

    python3 tasks.py demo [--backend numpy --arch lenet --epochs 50]
    python3 tasks.py test [pytest arguments]
    python3 tasks.py docs [sphinx-build arguments]

``docs`` builds the Sphinx site (API reference, user guide, and the gallery of
examples/, run at build time) into docs/_build/html, warnings as errors.

Needs only Python 3 (with its venv module) and pip; everything else is installed
into .venv from the package registry. The install is skipped when pyproject.toml has
not changed since the last one.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def run(*args: str | Path) -> None:
    print("+", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_venv(extra: str | None) -> None:
    """Create .venv and install the package (with ``extra``) unless already done."""
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # e.g. Debian's python3 without python3-venv
            sys.exit(f"could not create {VENV} ({exc}); install Python's venv module "
                     "(Debian/Ubuntu: apt-get install python3-venv) and retry")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{extra or 'core'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extra}]" if extra else "."
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target)
    stamp.write_text(digest)


def demo(args: list[str]) -> None:
    # the torch backend needs the torch extra; the NumPy demo only the core packages
    backends = [b for a, b in itertools.pairwise(args) if a == "--backend"]
    backends += [a.removeprefix("--backend=") for a in args if a.startswith("--backend=")]
    ensure_venv("torch" if "torch" in backends else None)
    run(PYTHON, "-m", "sklearn_cnn", "demo", *args)


def test(args: list[str]) -> None:
    ensure_venv("dev")
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "pytest", *args)


def docs(args: list[str]) -> None:
    ensure_venv("docs")
    run(PYTHON, "-m", "sphinx", "-W", "--keep-going", "-b", "html", *args,
        "docs", "docs/_build/html")


COMMANDS = {"demo": demo, "test": test, "docs": docs}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    try:
        COMMANDS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
