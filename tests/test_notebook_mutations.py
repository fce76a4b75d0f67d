"""Notebooks are regression tests of course_lib: a broken library must fail the notebook that teaches it.

The language-model targets misaligned by one position (y = x, the mistake of the source this
course replaces) once passed notebook 05: the loss simply became tiny. Its main-result check now
bounds the loss from below by an entropy-rate estimate. Here a copy of course_lib with that
mutation runs notebook 05 as the test command does (smoke, training forced), and must fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MUTATIONS = {   # the causal Transformer's targets are its inputs, in training and in evaluation
    "chapters/transformer_lm/task.py": [('return {"x": chunk[:, :-1], "y": chunk[:, 1:]}',
                                         'return {"x": chunk[:, :-1], "y": chunk[:, :-1]}'),
                                        ("y = chunk[:, 1:]", "y = chunk[:, :-1]")],
}


def _mutated_copy(base: Path) -> Path:
    target = base / "lib"
    shutil.copytree(ROOT / "course_lib", target / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, edits in MUTATIONS.items():
        path = target / "course_lib" / rel
        text = path.read_text()
        for old, new in edits:
            assert old in text, f"the mutation no longer applies to {rel}: {old!r} not found"
            text = text.replace(old, new)
        path.write_text(text)
    return target


@pytest.mark.slow
def test_lm_targets_equal_to_inputs_fail_notebook_05(tmp_path):
    lib = _mutated_copy(tmp_path)
    data = tmp_path / "data"          # caches and the broken library's checkpoints land here, not in data/
    data.mkdir()
    env = {**os.environ, "PYTHONPATH": str(lib), "COURSE_DATA_DIR": str(data), "COURSE_PROFILE": "smoke",
           "COURSE_ALWAYS_TRAIN": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run([sys.executable, "-c", "import course_lib; print(course_lib.__file__)"], env=env,
                           cwd=ROOT / "notebooks", capture_output=True, text=True, check=True)   # the kernel's cwd
    assert probe.stdout.strip().startswith(str(lib)), probe.stdout            # the copy is what gets imported
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax",
                          "--nbval-current-env", "--nbval-cell-timeout=900", "-x",
                          str(ROOT / "notebooks" / "05_rnn_lm.ipynb")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode != 0, "notebook 05 passed with the LM targets equal to the inputs"
    assert "NBVAL_CHECK_OUTPUT" in run.stdout or "AssertionError" in run.stdout, run.stdout[-3000:]
