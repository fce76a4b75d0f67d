"""The course website in headless Chromium: the home page and a chapter page render, figures and math included.

Screenshots go to artifacts/browser/site-*.png. Pages are opened from disk (file://), as a learner
who downloaded the built site would.
"""

from __future__ import annotations

import nbformat
from conftest import ARTIFACTS, ROOT

from course_lib.tooling.site import build_site


def _open(browser, path):
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(1500)                                       # MathJax typesets after load
    return page


def _broken_images(page) -> list[str]:
    return page.evaluate("() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
                         ".map(i => i.src.slice(0, 80))")


def test_site_pages_render(browser, tmp_path):
    site = build_site(tmp_path / "site")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    index = _open(browser, site / "index.html")
    assert "Self-supervised deep learning" in index.title()
    nav = index.evaluate("() => [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href'))")
    assert "01_attention.html" in nav and "06_masked_audio.html" in nav
    assert _broken_images(index) == [] and index.evaluate("() => document.images.length") >= 1
    index.screenshot(path=str(ARTIFACTS / "site-index.png"))
    chapter = _open(browser, site / "01_attention.html")
    nb = nbformat.read(ROOT / "notebooks" / "01_attention.ipynb", as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert chapter.evaluate("() => document.images.length") >= figures >= 1 and _broken_images(chapter) == []
    typeset = chapter.evaluate("() => document.querySelectorAll('.MathJax, .MathJax_Display, mjx-container').length")
    assert typeset > 10, f"math not typeset ({typeset} MathJax elements): is the site's mathjax/ folder there?"
    chapter.screenshot(path=str(ARTIFACTS / "site-01_attention.png"))
    chapter.screenshot(path=str(ARTIFACTS / "site-01_attention-full.png"), full_page=True)
    # the Chinese edition's page of the same chapter: Chinese text (in a CJK font, not boxes), math, figures
    zh = _open(browser, site / "zh-01_attention.html")
    assert "注意力" in zh.inner_text("body") and _broken_images(zh) == []
    assert zh.evaluate("() => document.images.length") >= figures
    assert zh.evaluate("() => document.querySelectorAll('.MathJax, .MathJax_Display, mjx-container').length") > 10
    # a missing glyph is drawn as the same empty box whatever the character ("tofu"): in the page's own font
    # (the course's Noto Sans SC subset, loaded by the site's CSS), draw two Chinese characters and compare
    drawn = zh.evaluate("""async () => { await document.fonts.load('40px "Course Noto Sans SC"', '注意');
        const family = getComputedStyle(document.querySelector('.md-typeset')).fontFamily;
        const draw = ch => { const c = document.createElement('canvas');
        c.width = c.height = 48; const g = c.getContext('2d'); g.font = '40px ' + family;
        g.fillText(ch, 2, 40); return Array.from(g.getImageData(0, 0, 48, 48).data).join(','); };
        return {same: draw('注') === draw('意'), loaded: document.fonts.check('40px "Course Noto Sans SC"', '注'),
                family}; }""")
    assert drawn["loaded"] and "Course Noto Sans SC" in drawn["family"], drawn
    zh.screenshot(path=str(ARTIFACTS / "site-zh-01_attention.png"))
    assert not drawn["same"], "Chinese characters render as boxes (see site-zh-01_attention.png)"
