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


def test_an_exercise_is_a_cell_with_an_answer_region(tmp_path):
    # notebook 00 calls its checker twice (the second time to show a wrong answer) and 04's first exercise
    # has two answer regions in one cell: each is still one exercise
    import nbformat
    from course_lib.tooling.timings import SOLUTION_MARK, _size_and_exercises
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"def f(x):\n    {SOLUTION_MARK}\n    return x\n    ### END SOLUTION\n"
                                          "if check_f(f).correct:\n    check_f(lambda x: 0)"),
                nbformat.v4.new_code_cell(f"def g():\n    {SOLUTION_MARK}\n    ...\n"
                                          f"def h():\n    {SOLUTION_MARK}\n    ..."),
                nbformat.v4.new_code_cell("check_f(f)"),
                nbformat.v4.new_markdown_cell(f"`{SOLUTION_MARK}` in prose")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert _size_and_exercises(path)[2] == 2


def test_a_diagram_is_looked_at_not_read(tmp_path):
    """Reading time counts the words of the prose; an image's alt text and file name are not read."""
    import nbformat
    from course_lib.tooling.timings import _size_and_exercises
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "Three words here.\n\n![A long description of the picture for screen readers](../docs/images/x.png)")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert _size_and_exercises(path) == (3, 0, 0)


def test_chinese_text_is_counted_in_characters_not_split_words():
    from course_lib.tooling.timings import CHARACTERS_PER_MINUTE, text_size
    zh = "注意力是加权平均：权重由查询与键的相似度经 softmax 得到。![图](a.png)"
    assert len(zh.split()) == 3                                   # what str.split() would call it: 3 "words"
    assert text_size(zh) == (1, 22)                 # "softmax", 22 Chinese characters (no punctuation, no image)
    assert text_size("Attention is a weighted average.") == (5, 0)
    row = NotebookTime("x", 60.0, words=120, exercises=1, characters=3 * CHARACTERS_PER_MINUTE)
    assert row.learner_minutes == 5 * -(-(1 + 3 + MINUTES_PER_EXERCISE + 1) // 5)


def test_the_chinese_readme_table_is_the_generated_one():
    text = (ROOT / "README.zh.md").read_text(encoding="utf-8")
    assert README_START in text and README_END in text
    committed = README_START + text.split(README_START, 1)[1].split(README_END, 1)[0] + README_END
    assert committed == readme_block(lang="zh"), "stale: run python -m course_lib timings --write"
    rows = notebook_times(lang="zh")
    assert all(r.characters > 1000 and r.machine_s for r in rows)            # counted in characters, timed
