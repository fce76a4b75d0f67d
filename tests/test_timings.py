"""One source for timing figures: the README's table is generated from the lock file and the notebooks."""

from __future__ import annotations

from pathlib import Path

from course_lib.tooling.timings import (MINUTES_PER_EXERCISE, README_END, README_START, WORDS_PER_MINUTE,
                                        NotebookTime, notebook_times, readme_block)

ROOT = Path(__file__).resolve().parents[1]


def test_readme_table_is_the_generated_one():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_START in text and README_END in text
    committed = README_START + text.split(README_START, 1)[1].split(README_END, 1)[0] + README_END
    assert committed == readme_block(), "README timings are stale: run python -m course_lib timings --write"


def test_every_notebook_has_a_recorded_class_time():
    rows = notebook_times()
    assert [r.notebook[:2] for r in rows] == [f"{i:02d}" for i in range(len(rows))]
    assert all(r.machine_s and r.machine_s > 0 and r.words > 300 for r in rows), rows


def test_learner_estimate_follows_its_stated_rule():
    row = NotebookTime("99_x", machine_s=300.0, words=WORDS_PER_MINUTE * 20, exercises=2)
    assert row.learner_minutes == 5 * -(-(20 + 2 * MINUTES_PER_EXERCISE + 5) // 5)        # 45 min
    assert NotebookTime("99_x", None, WORDS_PER_MINUTE * 21, 0).learner_minutes == 25     # rounded up to 5
    assert "not recorded" in readme_block([NotebookTime("99_x", None, 10, 0)])
