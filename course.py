#!/usr/bin/env python3
"""One entry point for the course, needing only Python >= 3.11 and pip.

    python3 course.py lab       # set up .venv (first time), then open JupyterLab on notebooks/
    python3 course.py test      # set up .venv (first time), then run every test and every notebook (smoke)
    python3 course.py setup     # only create/refresh .venv
    python3 course.py outputs   # regenerate the committed notebook outputs (class profile)

Set-up creates ``.venv`` beside this file and installs the exact versions CI tested
(``requirements/constraints.txt``) plus ``course_lib`` in editable mode. It re-runs only
when the constraints or ``pyproject.toml`` change. ``COURSE_TORCH_INDEX`` (for example
the PyTorch CPU wheel index) installs torch from that index first, to save disk.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
STAMP = VENV / ".course-installed"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _fingerprint() -> str:
    h = hashlib.sha256()
    for path in (CONSTRAINTS, ROOT / "pyproject.toml"):
        h.update(path.read_bytes())
    h.update(os.environ.get("COURSE_TORCH_INDEX", "").encode())
    return h.hexdigest()


def _run(cmd: list[str | Path], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def setup() -> Path:
    """Create ``.venv`` and install the tested versions; a no-op when already up to date."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python >= 3.11 is required; this is {sys.version.split()[0]}")
    python = _venv_python()
    if not python.exists():
        print(f"creating virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return python
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    torch_index = os.environ.get("COURSE_TORCH_INDEX")
    if torch_index:
        torch_pin = next(line.strip() for line in CONSTRAINTS.read_text().splitlines() if line.startswith("torch=="))
        _run([*pip, torch_pin, "--index-url", torch_index])
    _run([*pip, "-c", CONSTRAINTS, "-e", ROOT])
    STAMP.write_text(_fingerprint())
    return python


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in {"setup", "lab", "test", "outputs"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    python = setup()
    env = dict(os.environ)
    if command == "setup":
        return 0
    if command == "lab":
        return subprocess.call([str(python), "-m", "jupyter", "lab", "--notebook-dir", str(ROOT / "notebooks"),
                                *argv[1:]], cwd=ROOT, env=env)
    if command == "outputs":
        return subprocess.call([str(python), "-m", "course_lib", "run-notebooks", "--profile", "class",
                                "--inplace", *argv[1:]], cwd=ROOT, env=env)
    # test: unit tests and every notebook (nbval, smoke profile) in one pytest run
    env.update({"COURSE_PROFILE": "smoke", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
                "PYTHONDONTWRITEBYTECODE": "1"})
    return subprocess.call([str(python), "-m", "pytest", "-p", "no:cacheprovider", "tests", "notebooks",
                            "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=900", "--durations=15",
                            *argv[1:]], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
