"""Notebooks are regression tests of course_lib: a broken library must fail the notebook that teaches it.

One likely mutation per chapter: each is applied to a copy of course_lib, the chapter's notebook runs as
the test command runs it (smoke, training forced, stopping at the first failing cell), and must fail.
The language-model targets misaligned by one position (y = x, the mistake of the source this course
replaces) once passed notebook 05: the loss simply became tiny; its main-result check now bounds the
loss from below by an entropy-rate estimate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MUTATIONS = {   # notebook -> (what breaks, [(file under course_lib, old, new), ...])
    "01_attention.ipynb": ("attention scores without the 1/sqrt(d_k) scale", [
        ("attention.py", "scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)",
         "scale = 1.0 if scale is None else float(scale)")]),
    "02_masked_lm.ipynb": ("the masker selects padding and special tokens too", [
        ("objectives/mlm.py", "real = ids >= n_special", "real = ids >= 0")]),
    "03_gan.ipynb": ("the generator trained with fake labels (the non-saturating loss's sign flipped)", [
        ("objectives/gan.py", "        return F.softplus(-logits).mean()\n    if kind == \"saturating\"",
         "        return F.softplus(logits).mean()\n    if kind == \"saturating\"")]),
    "04_contrastive.ipynb": ("NT-Xent on raw dot products (no L2 normalisation)", [
        ("objectives/infonce.py",
         "u = F.normalize(torch.cat([z1, z2]).float(), dim=1)                   # (2B, D) unit rows",
         "u = torch.cat([z1, z2]).float()")]),
    "05_rnn_lm.ipynb": ("the causal Transformer's targets are its inputs, in training and in evaluation", [
        ("chapters/transformer_lm/task.py", 'return {"x": chunk[:, :-1], "y": chunk[:, 1:]}',
         'return {"x": chunk[:, :-1], "y": chunk[:, :-1]}'),
        ("chapters/transformer_lm/task.py", "y = chunk[:, 1:]", "y = chunk[:, :-1]")]),
}


def _mutated_copy(base: Path, edits: list[tuple[str, str, str]]) -> Path:
    target = base / "lib"
    shutil.copytree(ROOT / "course_lib", target / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in edits:
        path = target / "course_lib" / rel
        text = path.read_text()
        assert old in text, f"the mutation no longer applies to {rel}: {old!r} not found"
        path.write_text(text.replace(old, new))
    return target


@pytest.mark.slow
@pytest.mark.parametrize("notebook", sorted(MUTATIONS))
def test_a_broken_library_fails_its_notebook(notebook, tmp_path):
    what, edits = MUTATIONS[notebook]
    lib = _mutated_copy(tmp_path, edits)
    data = tmp_path / "data"          # caches and the broken library's checkpoints land here, not in data/
    data.mkdir()
    env = {**os.environ, "PYTHONPATH": str(lib), "COURSE_DATA_DIR": str(data), "COURSE_PROFILE": "smoke",
           "COURSE_ALWAYS_TRAIN": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run([sys.executable, "-c", "import course_lib; print(course_lib.__file__)"], env=env,
                           cwd=ROOT / "notebooks", capture_output=True, text=True, check=True)   # the kernel's cwd
    assert probe.stdout.strip().startswith(str(lib)), probe.stdout            # the copy is what gets imported
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax",
                          "--nbval-current-env", "--nbval-cell-timeout=900", "-x",
                          str(ROOT / "notebooks" / notebook)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode != 0, f"{notebook} passed with {what}"
    assert "NBVAL_CHECK_OUTPUT" in run.stdout or "Error" in run.stdout, run.stdout[-3000:]
