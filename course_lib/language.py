"""The language of what the library says to a learner: check lines, comparison verdicts, exercise feedback.

English by default. The Chinese edition's set-up cell calls ``set_language("zh")`` (or set
``COURSE_LANG=zh`` before starting Jupyter) and the same code then prints Chinese.

Every translation lives in one catalog, ``course_lib/data/messages_zh.json``: one entry per English
message, ``{"en": ..., "zh": ...}``. An entry is either a whole message (a check's name, a method's
name in a comparison) or a *template*, where ``{}`` stands for a value the code fills in: the English
``f"the loss is {loss:.3f}, expected {target:.3f}"`` has the entry ``"the loss is {}, expected {}"``
and its Chinese ``"损失为 {}，应为 {}"`` (``{0}``, ``{1}`` reorder the values). :func:`tr` finds a
message's entry (the exact text first, then the template it matches) and returns the Chinese with the
same values; a message without an entry is returned unchanged, in English, never lost.
``python3 course.py translate --check`` lists the messages the code can print that have no entry.

Figures speak it too: while the language is Chinese, every matplotlib text (titles, axis labels,
legend entries) is looked up in the same catalog as it is set (:func:`translate_figures`), and
:func:`use_cjk_font` registers the Noto Sans SC subset shipped in ``course_lib/data/fonts`` (SIL OFL
1.1) as matplotlib's fallback for the characters its default font lacks, so they are drawn, not boxes.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

__all__ = ["LANGUAGES", "language", "set_language", "tr", "catalog", "use_cjk_font", "translate_figures", "CJK_FONT",
           "CATALOG"]

LANGUAGES = ("en", "zh")
DATA = Path(__file__).resolve().parent / "data"
CATALOG = DATA / "messages_zh.json"
CJK_FONT = DATA / "fonts" / "NotoSansSC-CourseSubset.ttf"
CJK_FAMILY = "Noto Sans SC"
_PLACEHOLDER = re.compile(r"\{(\d*)\}")
WORDS = re.compile(r"[A-Za-z]{2}")          # text with words to translate (not a number, not a placeholder alone)
_chosen: str | None = None


def language() -> str:
    """The language messages are printed in: ``set_language``'s choice, else ``$COURSE_LANG``, else "en".

    Chinese chosen by ``$COURSE_LANG`` sets up the font and figure text the first time it is read.
    """
    if _chosen:
        return _chosen
    lang = os.environ.get("COURSE_LANG", "en").strip().lower() or "en"
    if lang not in LANGUAGES:
        raise ValueError(f"COURSE_LANG must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    if lang == "zh":
        use_cjk_font()
        translate_figures()
    return lang


def set_language(lang: str) -> str:
    """Print the library's messages in ``lang`` ("en" or "zh") from now on; returns it.

    Chinese also registers the Chinese font (:func:`use_cjk_font`) and translates figure text
    (:func:`translate_figures`).
    """
    global _chosen
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    _chosen = lang
    if lang == "zh":
        use_cjk_font()
        translate_figures()
    return lang


@functools.lru_cache(maxsize=1)
def catalog() -> tuple[dict[str, str], dict[str, str], list[tuple[re.Pattern, str]]]:
    """The Chinese catalog: whole messages, templates, and the templates a finished message is matched
    against as (pattern, Chinese), most specific first. A template without words of its own (``"{} {}: {}"``)
    is only filled, never matched: it would match nearly anything."""
    entries = json.loads(CATALOG.read_text(encoding="utf-8"))["messages"]
    exact = {e["en"]: e["zh"] for e in entries if not _PLACEHOLDER.search(e["en"])}
    templates = {e["en"]: e["zh"] for e in entries if _PLACEHOLDER.search(e["en"])}
    matchable = sorted((en for en in templates if WORDS.search(_PLACEHOLDER.sub("", en))),
                       key=lambda en: -len(_PLACEHOLDER.sub("", en)))
    return exact, templates, [(template_pattern(en), templates[en]) for en in matchable]


def template_pattern(template: str) -> re.Pattern:
    """``"loss {} at step {}"`` -> a pattern that matches the formatted message and captures each value."""
    parts = _PLACEHOLDER.split(template)[::2]            # the literal text between placeholders
    return re.compile("".join(re.escape(p) + ("(.+?)" if i < len(parts) - 1 else "") for i, p in enumerate(parts))
                      + r"\Z", re.DOTALL)


def fill(template: str, values: list[str] | tuple[str, ...]) -> str:
    """Put ``values`` into ``template``'s placeholders: ``{}`` in order, ``{0}``, ``{1}``... by position."""
    counter = iter(range(len(values)))
    return _PLACEHOLDER.sub(lambda m: str(values[int(m.group(1)) if m.group(1) else next(counter)]), template)


def tr(message: str, *values: object) -> str:
    """``message`` in the current language.

    With ``values``, ``message`` is a template (``{}`` per value) filled in the current language; without,
    it is a finished message, looked up whole or by the template it matches. English, or no entry: the
    English message, unchanged.
    """
    if language() == "en":
        return fill(message, [str(v) for v in values]) if values else message
    exact, templates, matchable = catalog()
    if values:
        return fill(templates.get(message) or exact.get(message) or message, [str(v) for v in values])
    if message in exact:
        return exact[message]
    for pattern, zh in matchable:
        m = pattern.match(message)
        if m:
            return fill(zh, [tr(v) for v in m.groups()])   # a value can itself be a message ("{} vs {}")
    return message


@functools.lru_cache(maxsize=1)
def _register_cjk_font() -> None:
    from matplotlib import font_manager
    if not CJK_FONT.is_file():
        raise FileNotFoundError(f"the Chinese font {CJK_FONT} is missing: reinstall the course (pip install -e .)")
    font_manager.fontManager.addfont(str(CJK_FONT))


def use_cjk_font() -> str:
    """Register the shipped Noto Sans SC subset with matplotlib as the fallback for glyphs that the
    default font (DejaVu Sans) lacks, so Chinese titles and labels are drawn, not boxes. Returns the family.

    Cheap to call again (after a style or ``rcdefaults`` reset the fonts, it puts the fallback back)."""
    from matplotlib import rcParams
    _register_cjk_font()
    families = list(rcParams["font.family"])
    if CJK_FAMILY not in families:                 # matplotlib falls back glyph by glyph along this list
        rcParams["font.family"] = families + [CJK_FAMILY]
    return CJK_FAMILY



@functools.lru_cache(maxsize=1)
def translate_figures() -> None:
    """From now on, a matplotlib text (title, label, legend entry, annotation) set while the language is not
    English is translated through :func:`tr` (numbers and other text without words are left alone)."""
    from matplotlib.text import Text
    original = Text.set_text

    def set_text(self, s):
        if s is not None and language() != "en":
            use_cjk_font()                                      # the fallback font survives style resets
            text = str(s)
            if WORDS.search(text):
                s = tr(text)
        return original(self, s)

    set_text.__doc__ = original.__doc__
    Text.set_text = set_text
