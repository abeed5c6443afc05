"""The code base stays ruff-clean: part of the test run so CI enforces it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ruff installs next to the interpreter running the tests (the test extra), or is on PATH.
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_clean() -> None:
    """`ruff check` finds nothing in router/, tests/ and benchmarks/."""
    done = subprocess.run([str(RUFF), "check", "router", "tests", "benchmarks"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


MYPY = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")


@pytest.mark.skipif(MYPY is None, reason="mypy is not installed (pip install -e '.[test]')")
def test_mypy_clean() -> None:
    """`mypy` (configured in pyproject.toml) finds no type errors in router/."""
    done = subprocess.run([str(MYPY)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
