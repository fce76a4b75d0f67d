"""The code is lint clean under the project's ruff configuration (pyproject.toml [tool.ruff])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=ROOT,
                         capture_output=True, text=True)
    assert "No module named ruff" not in run.stderr, "ruff is part of the [test] extra: pip install -e '.[test]'"
    assert run.returncode == 0, run.stdout[-3000:]
