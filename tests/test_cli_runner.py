"""The command line's env report and the headless notebook runner (the course's main job)."""

from __future__ import annotations

import json

import pytest

from course_lib.__main__ import main
from course_lib.tooling.notebook_runner import notebook_paths, run_notebooks


def test_env_command(capsys):
    assert main(["env", "--profile", "smoke", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "profile      : smoke" in out and "device       : cpu" in out


def test_unknown_notebook_filter_lists_notebooks():
    with pytest.raises(ValueError, match="00_start_here.ipynb"):
        notebook_paths("nope")


@pytest.mark.slow
def test_run_notebooks_writes_copies_html_and_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert run_notebooks(profile="smoke", only="00_", out_dir=tmp_path) is True
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [r["notebook"] for r in rows] == ["00_start_here.ipynb"]
    row = rows[0]
    assert row["status"] == "pass" and row["profile"] == "smoke" and row["device"] == "cpu" and row["wall_s"] > 0
    assert "first_run_val_nats" in row["metrics"]                      # reported by the notebook itself
    assert (tmp_path / "00_start_here.ipynb").exists()
    assert "<html" in (tmp_path / "00_start_here.html").read_text()[:500].lower()
    table = (tmp_path / "summary.md").read_text()
    assert "| 00_start_here.ipynb | smoke | cpu |" in table and "| pass |" in table
