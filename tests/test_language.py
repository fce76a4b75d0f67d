"""The library speaks Chinese when asked: check lines, verdicts and exercise feedback, from one catalog with
no gaps; Chinese in figures is drawn with the shipped font, not as boxes."""

from __future__ import annotations

import glob
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from course_lib import language
from course_lib.exercises.base import ExerciseWrong, run_checker
from course_lib.notebook.checks import CheckFailed, check_true
from course_lib.notebook.compare import check_verdict, compare
from course_lib.tooling import messages

ROOT = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]")


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setattr(language, "_chosen", None)
    monkeypatch.setenv("COURSE_LANG", "zh")
    yield
    monkeypatch.setattr(language, "_chosen", None)


def test_english_is_the_default_and_unchanged(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_LANG", raising=False)
    monkeypatch.setattr(language, "_chosen", None)
    assert language.language() == "en"
    assert language.tr("weights sum to 1") == "weights sum to 1"
    assert language.tr("{} vs {}", "a", "b") == "a vs b"
    check_true("weights sum to 1", True)
    assert capsys.readouterr().out == "PASS weights sum to 1\n"


def test_an_unknown_language_is_refused(monkeypatch):
    monkeypatch.setattr(language, "_chosen", None)
    monkeypatch.setenv("COURSE_LANG", "fr")
    with pytest.raises(ValueError, match="COURSE_LANG must be one of en, zh, got 'fr'"):
        language.language()
    with pytest.raises(ValueError, match="language must be one of"):
        language.set_language("de")


def test_templates_match_fill_and_reorder():
    pattern = language.template_pattern("the loss is {}, expected {}")
    assert pattern.match("the loss is 2.31, expected 1.10").groups() == ("2.31", "1.10")
    assert pattern.match("the loss is 2.31") is None
    assert language.fill("{1} 之后是 {0}", ["a", "b"]) == "b 之后是 a"
    assert language.fill("{} 和 {}", ["a", "b"]) == "a 和 b"


def test_chinese_check_lines_verdicts_and_feedback(zh, capsys):
    check_true("weights sum to 1", True)
    line = capsys.readouterr().out
    assert line.startswith("通过 ") and CJK.search(line[3:]), line
    with pytest.raises(CheckFailed):
        check_true("weights sum to 1", False, "condition is false")
    assert capsys.readouterr().out.startswith("未通过 ")
    check_true("a name no catalog holds", True)                          # no entry: English, never lost
    assert capsys.readouterr().out == "通过 a name no catalog holds\n"

    cmp = compare({"random positions": [0.5, 0.6, 0.7], "first 15%": [0.1, 0.2, 0.25]}, metric="masked accuracy",
                  higher_is_better=True, reference="first 15%", over="seeds")
    out = capsys.readouterr().out
    assert "±" in out and "结论：" in out and "优于" in out and "verdict" not in out, out
    check_verdict(cmp["random positions"], "better")
    assert capsys.readouterr().out.startswith("通过 ")

    def wrong(x):
        return x
    def checker(fn):
        raise ExerciseWrong("you normalised over dim 0; with the default dim=-1 each row (last dim) must sum to 1")
    verdict = run_checker("stable softmax", wrong, checker, quiet=True)
    assert verdict.message.startswith("you normalised")                # the verdict keeps the English
    shown = str(verdict)
    assert shown.startswith("✗ ") and CJK.search(shown) and "dim=-1" in shown, shown


def test_the_catalog_has_every_message_and_nothing_else():
    problems = messages.problems()
    assert not problems, "\n".join(problems[:20]) + "\nrun `python -m course_lib translate --update` and translate"


def test_the_gap_check_finds_new_messages(tmp_path):
    (tmp_path / "course_lib" / "exercises").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "course_lib" / "exercises" / "demo.py").write_text(
        "def check(out, want):\n"
        "    raise ExerciseWrong(f'you return {out:.3f}, expected {want:.3f}')\n")
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("check_true(f'loss below {x} nats', ok)")])
    nbformat.write(nb, tmp_path / "notebooks" / "01_demo.ipynb")
    found = messages.wanted(tmp_path)
    assert found == {"you return {}, expected {}", "loss below {} nats"}
    entries = [{"en": "you return {}, expected {}", "zh": "你返回 {}，应为 {}"}, {"en": "gone", "zh": "没了"}]
    assert messages.missing(entries, tmp_path) == ["loss below {} nats"]
    assert messages.orphans(entries, tmp_path) == ["gone"]
    assert messages.untranslated([{"en": "a {} b", "zh": "甲乙"}]) == ["a {} b"]


def _chinese_text() -> str:
    text = language.CATALOG.read_text(encoding="utf-8")
    for path in glob.glob(str(ROOT / "translations" / "**" / "*.json"), recursive=True):
        text += Path(path).read_text(encoding="utf-8")
    for path in [ROOT / "README.zh.md", *ROOT.glob("docs/*.zh.md")]:
        text += path.read_text(encoding="utf-8")
    return text


def test_the_shipped_font_has_every_chinese_character_the_course_prints():
    from fontTools.ttLib import TTFont
    cmap = TTFont(language.CJK_FONT).getBestCmap()
    needed = {c for c in _chinese_text() if ord(c) >= 0x2E80}
    absent = sorted(c for c in needed if ord(c) not in cmap)
    assert not absent, (f"{len(absent)} characters are not in {language.CJK_FONT.name}: {''.join(absent[:40])}; "
                        "rebuild it (docs/maintainers.md, 'The Chinese font')")


def test_chinese_in_a_figure_is_drawn_not_boxed():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    language.use_cjk_font()

    def draw(text):
        fig = plt.figure(figsize=(1, 1), dpi=50)
        fig.text(0.1, 0.3, text, fontsize=30)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., 0].copy()
        plt.close(fig)
        return pixels

    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # matplotlib warns "Glyph ... missing from font(s)"
        a, b = draw("注"), draw("意")
    assert (a < 128).sum() > 20 and (b < 128).sum() > 20          # ink on the canvas
    assert not np.array_equal(a, b)                                # two characters, two shapes: not the same box


def test_figure_text_is_translated_while_chinese(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.setattr(language, "_chosen", None)
    monkeypatch.setenv("COURSE_LANG", "zh")
    fig, ax = plt.subplots()
    ax.set_title("accuracy")
    ax.plot([0, 1], [0, 1], label="chance")
    ax.set(xlabel="frame (10 ms)")
    legend = ax.legend()
    fig.canvas.draw()
    zh = language.catalog()[0]
    assert ax.get_title() == zh["accuracy"] and CJK.search(ax.get_title())
    assert legend.get_texts()[0].get_text() == zh["chance"] and ax.get_xlabel() == zh["frame (10 ms)"]
    assert all(not CJK.search(t.get_text()) for t in ax.get_xticklabels())      # numbers stay numbers
    monkeypatch.setenv("COURSE_LANG", "en")
    ax.set_title("accuracy")
    assert ax.get_title() == "accuracy"                                           # English again: untouched
    plt.close(fig)


def test_the_font_licence_ships_with_it():
    licence = (language.CJK_FONT.parent / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "fonts/*.ttf" in pyproject and "fonts/OFL.txt" in pyproject
    assert json.loads(language.CATALOG.read_text(encoding="utf-8"))["language"] == "zh"
