"""A built wheel (what a plain ``pip install`` installs) leaves the reference solutions out.

The teacher edition and CI use ``course_lib/exercises/solutions/`` from the repository (an
editable install); a learner who installs the package cannot import the answers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_has_the_plays_and_no_solutions(tmp_path):
    src = tmp_path / "src"       # a copy: building never writes build/ or egg-info into the checkout
    src.mkdir()
    for name in ["pyproject.toml", "README.md", "THIRD_PARTY.md", *(p.name for p in ROOT.glob("LICEN[CS]E*"))]:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "course_lib", src / "course_lib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert (src / "course_lib" / "exercises" / "solutions" / "start.py").exists()   # present in the source
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-q", "-w", str(tmp_path / "whl")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel, = (tmp_path / "whl").glob("course_lib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "course_lib/exercises/start.py" in names and "course_lib/exercises/base.py" in names
    assert "course_lib/notebook/viz.py" in names
    assert "course_lib/data/shakespeare_plays.json.xz" in names          # a plain install has the plays
    assert "course_lib/data/mnist_5k.npz" in names                       # and the digits
    assert any(n.endswith(".dist-info/licenses/THIRD_PARTY.md") for n in names), "THIRD_PARTY.md is not in the wheel"
    leaked = [n for n in names if "solutions" in n.split("/")]
    assert not leaked, f"the wheel ships the reference solutions: {leaked}"
