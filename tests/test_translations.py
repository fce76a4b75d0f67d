"""The Chinese edition is generated from the English notebooks and a translation catalog, and never drifts.

Fails when an English Markdown cell changed and its translation was not updated (stale), when a Markdown
cell has no translation (missing), when an entry's cell is gone (orphan), when a Chinese code cell differs
from the English one (bar the declared language switch), when the edition was not run since its code changed
(its outputs are its own run's), when a committed Chinese notebook differs from what the English notebook and
the catalog build, and when a translation changes what must not change (math, code spans, link targets, HTML).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import nbformat
import pytest

from course_lib.tooling import translation as tr
from course_lib.tooling.notebook_runner import code_hash

LANG = "zh"


def test_the_chinese_edition_is_complete_current_and_generated():
    problems = tr.check(LANG)
    assert not problems, "\n".join(map(str, problems))
    english = tr.english_notebooks()
    assert len(english) == 7 and all(tr.edition_path(nb, LANG).exists() for nb in english)


def _invariants(text: str) -> Counter:
    """What a translation must keep character for character: math, inline code, link targets, HTML tags."""
    text = re.sub(r"```.*?```", lambda m: f"[fence {m.group(0)}]", text, flags=re.S)
    found = re.findall(r"\$\$.+?\$\$|\$[^$]+?\$", text, re.S) + re.findall(r"`[^`]+`", text)   # may span lines
    found += [f"link {t}" for t in re.findall(r"\]\(([^)\s]+)\)", text)]
    found += [f"html {t}" for t in re.findall(r"<[a-zA-Z/][^>]*>", text)]
    return Counter(found)


@pytest.mark.parametrize("notebook", tr.english_notebooks(), ids=lambda p: p.stem)
def test_translations_keep_math_code_links_and_html(notebook):
    catalog = tr.load_catalog(tr.catalog_path(notebook, LANG))
    for entry in catalog["cells"]:
        en, zh = _invariants(entry["en"]), _invariants(entry[LANG])
        lost = en - zh
        assert not lost, f"{notebook.name}, cell {entry['id']}: the translation lost or changed {sorted(lost)}"
        assert re.search(r"[\u4e00-\u9fff]", entry[LANG]) or not re.search(r"[A-Za-z]{4,}", entry["en"]), \
            f"{notebook.name}, cell {entry['id']}: no Chinese in the translation"


def _tiny_course(root):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# One\n\nAttention is a weighted average.", id="intro"),
                nbformat.v4.new_code_cell("print(1 + 1)", id="code"),
                nbformat.v4.new_markdown_cell("The weights sum to one.", id="after")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    (root / "notebooks").mkdir()
    path = root / "notebooks" / "01_tiny.ipynb"
    nbformat.write(nb, path)
    return path


def _translate_all(path, root, texts):
    catalog_file = tr.catalog_path(path, LANG, root)
    catalog = json.loads(catalog_file.read_text())
    for entry in catalog["cells"]:
        entry[LANG] = texts[entry["id"]]
        entry.pop("en_before", None)
    catalog_file.write_text(json.dumps(catalog, ensure_ascii=False))


def test_update_flags_then_accepts_and_the_check_catches_every_problem(tmp_path):
    path = _tiny_course(tmp_path)
    assert tr.update_catalog(path, LANG, tmp_path)["added"] == 2
    assert {p.kind for p in tr.check(LANG, tmp_path)} == {"missing"}
    _translate_all(path, tmp_path, {"intro": "# 一\n\n注意力是加权平均。", "after": "权重之和为一。"})
    assert tr.update_catalog(path, LANG, tmp_path)["accepted"] == 2
    assert [p.kind for p in tr.check(LANG, tmp_path)] == ["out of date"]          # nothing built yet
    tr.write_editions(LANG, tmp_path)
    assert [p.kind for p in tr.check(LANG, tmp_path)] == ["not run"]              # built; no outputs of its own yet
    assert tr.run_editions(LANG, root=tmp_path)
    assert tr.check(LANG, tmp_path) == []
    built = nbformat.read(tr.edition_path(path, LANG, tmp_path), 4)
    assert [c.source for c in built.cells] == ["# 一\n\n注意力是加权平均。", tr.SWITCH[LANG] + "print(1 + 1)",
                                               "权重之和为一。"]
    assert built.cells[1].outputs[0]["text"] == "2\n" and "jupytext" not in built.metadata   # its own run's output
    assert built.metadata["translation"]["run"]["code_sha256"] == code_hash(built)

    # an English edit: the translation is stale until a person updates it; update keeps it and shows the old text
    english = nbformat.read(path, 4)
    english.cells[2].source = "The weights are positive and sum to one."
    nbformat.write(english, path)
    assert [(p.cell, p.kind) for p in tr.check(LANG, tmp_path)] == [("after", "stale")]
    assert tr.update_catalog(path, LANG, tmp_path)["changed"] == 1
    entry = next(e for e in tr.load_catalog(tr.catalog_path(path, LANG, tmp_path))["cells"] if e["id"] == "after")
    assert entry["en_before"] == "The weights sum to one." and entry[LANG] == "权重之和为一。"
    assert tr.update_catalog(path, LANG, tmp_path)["accepted"] == 0                   # still not updated: stale
    with pytest.raises(ValueError, match="stale"):
        tr.write_editions(LANG, tmp_path)
    _translate_all(path, tmp_path, {"intro": "# 一\n\n注意力是加权平均。", "after": "权重为正，且和为一。"})
    tr.update_catalog(path, LANG, tmp_path)
    tr.write_editions(LANG, tmp_path)
    assert tr.check(LANG, tmp_path) == []             # a text change keeps the run's outputs: the code is the same

    # a code change in English: the edition must be run again (rebuilding drops the old run's outputs)
    english.cells[1].source = "print(2 + 2)"
    nbformat.write(english, path)
    assert [p.kind for p in tr.check(LANG, tmp_path)] == ["code differs", "not run"]
    tr.write_editions(LANG, tmp_path)
    assert [p.kind for p in tr.check(LANG, tmp_path)] == ["not run"]
    assert nbformat.read(tr.edition_path(path, LANG, tmp_path), 4).cells[1].outputs == []
    assert tr.run_editions(LANG, root=tmp_path) and tr.check(LANG, tmp_path) == []
    # a hand edit of the edition's code
    edition = nbformat.read(tr.edition_path(path, LANG, tmp_path), 4)
    edition.cells[1].source = "print('改过')"
    nbformat.write(edition, tr.edition_path(path, LANG, tmp_path))
    assert [p.kind for p in tr.check(LANG, tmp_path)] == ["code differs", "out of date"]

    # a removed English cell leaves an orphan entry; a new one is missing
    english.cells = english.cells[:2] + [nbformat.v4.new_markdown_cell("New text.", id="new")]
    nbformat.write(english, path)
    assert sorted(p.kind for p in tr.check(LANG, tmp_path)) == ["missing", "orphan"]


def test_translated_guides_are_current_and_a_changed_source_makes_them_stale(tmp_path):
    assert tr.doc_problems(LANG) == [], "a translated guide is stale: docs/*.zh.md"
    guides = sorted((tr.ROOT / "docs").glob("*.zh.md"))
    assert len([g for g in guides if g.read_text(encoding="utf-8").startswith("<!-- translated from")]) >= 2
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\nRun it.\n")
    import hashlib
    digest = hashlib.sha256((tmp_path / "docs" / "guide.md").read_bytes()).hexdigest()[:16]
    header = f"<!-- translated from docs/guide.md, sha256 {digest}; x -->"
    (tmp_path / "docs" / "guide.zh.md").write_text(header + "\n# 指南\n")
    assert tr.doc_problems(LANG, tmp_path) == []
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\nRun it twice.\n")
    assert [p.kind for p in tr.doc_problems(LANG, tmp_path)] == ["stale"]
    (tmp_path / "docs" / "guide.md").unlink()
    assert [p.kind for p in tr.doc_problems(LANG, tmp_path)] == ["orphan"]


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown language 'fr'; expected one of: zh"):
        tr.check("fr", tmp_path)


def _glossary() -> list[tuple[str, set[str]]]:
    """(English term, accepted Chinese renderings) per row of docs/glossary.md's term tables.

    The 中文 column gives the rendering first; what its parentheses add (other names, the English kept in
    Chinese writing) is accepted too. The English's own parentheses only say which sense is meant.
    """
    from course_lib.tooling.translation import ROOT
    rows = []
    for line in (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("English", "---") or cells[0].startswith("$"):
            continue
        english = re.sub(r"\(.*?\)", "", cells[0]).strip()
        first = re.split(r"（| / |、|，", cells[1])[0].strip()
        extra = re.findall(r"（(.*?)）", cells[1])
        accepted = {first} | {a.strip() for group in extra for a in re.split(r"[，；、：]", group) if a.strip()}
        rows.append((english, accepted))
    return rows


def _english_prose(text: str) -> str:
    """The running English text of a cell: no code, math, italics (titles, emphasis) or reference-list items."""
    kept, in_reference = [], False
    for line in text.splitlines():
        if re.match(r"^#+ .*(Further reading|References)", line):
            break
        if re.match(r"^\s*[*-] .*\b(19|20)\d\d\b", line):
            in_reference = True
            continue
        if in_reference and line.startswith("  "):
            continue
        in_reference = False
        kept.append(line)
    text = re.sub(r"```.*?```", "", "\n".join(kept), flags=re.S)
    text = re.sub(r"\$\$.+?\$\$|\$[^$]+?\$", "", text, flags=re.S)
    text = re.sub(r"`[^`]+`", "", text)
    return re.sub(r"(?<![*\w])\*(?![*\s])[^*]+?(?<!\s)\*(?![*\w])", "", text)


def _off_glossary(entry: dict, rows: list[tuple[str, set[str]]]) -> list[str]:
    prose = _english_prose(entry["en"])
    return [f"{english!r} without any of {sorted(accepted)}" for english, accepted in rows
            if re.search(rf"(?<![\w-]){re.escape(english)}(?:s|es)?(?![\w-])", prose, re.I)
            and not any(a in entry[LANG] for a in accepted)]


def test_each_glossary_term_is_rendered_one_way():
    """Where a cell's running English uses a glossary term, its translation uses the glossary's rendering."""
    rows = _glossary()
    assert len(rows) >= 70
    off = [f"{notebook.stem} {entry['id']}: {problem}" for notebook in tr.english_notebooks()
           for entry in tr.load_catalog(tr.catalog_path(notebook, LANG))["cells"]
           for problem in _off_glossary(entry, rows)]
    assert not off, "\n".join(off)


def test_the_glossary_check_sees_terms_and_skips_code_math_and_references():
    prose = _english_prose("The *loss* and `loss` and $loss$ differ from the loss.\n"
                           "* A. B. (2020), *Attention Is All You Need*,\n  NeurIPS.\n\n## Further reading\nattention")
    assert prose.count("loss") == 1 and "ttention" not in prose
    rows = _glossary()
    right = {"en": "The encoder's embeddings.", LANG: "编码器的嵌入。"}
    wrong = {"en": "The encoder's embeddings.", LANG: "编码机的嵌入。"}         # 编码机: not the glossary's word
    assert _off_glossary(right, rows) == [] and len(_off_glossary(wrong, rows)) == 1


def test_the_common_mistakes_page_quotes_the_committed_run():
    from course_lib.tooling import mistakes
    rows = mistakes.load_mistakes()
    assert len(rows) >= 25 and {m["notebook"][:2] for m in rows} == {"00", "01", "02", "03", "04", "05", "06"}
    assert mistakes.page_problem() is None, mistakes.page_problem()
    page = mistakes.PAGE.read_text(encoding="utf-8")
    assert page.count("\n| ") == len(rows) + 1                       # the header and one row per mistake


def test_an_evidence_line_must_match_exactly_one_output_line(tmp_path):
    from course_lib.tooling.mistakes import evidence_line
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("run()", id="c", outputs=[
        nbformat.v4.new_output("display_data", data={"text/plain": "train: 100%|###| 4/4"}),     # no final newline
        nbformat.v4.new_output("stream", text="broken: loss 0.91\nfixed: loss 0.12\n")])])
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    assert evidence_line(path, "c", r"^broken: loss [\d.]+$") == "broken: loss 0.91"
    with pytest.raises(ValueError, match="0 output lines match"):
        evidence_line(path, "c", r"^broken: loss [\d.]+ nats$")
    with pytest.raises(ValueError, match="2 output lines match"):
        evidence_line(path, "c", r"loss")
    with pytest.raises(ValueError, match="no code cell"):
        evidence_line(path, "missing", r"loss")


def test_a_stale_or_missing_mistakes_page_is_reported(tmp_path, monkeypatch):
    from course_lib.tooling import mistakes
    monkeypatch.setattr(mistakes, "PAGE", tmp_path / "common_mistakes.zh.md")
    assert "stale" in mistakes.page_problem()                                  # missing
    mistakes.PAGE.write_text(mistakes.build_page().replace("|", "¦", 1), encoding="utf-8")
    assert "stale" in mistakes.page_problem()                                  # edited by hand
    mistakes.write_page()
    assert mistakes.page_problem() is None
