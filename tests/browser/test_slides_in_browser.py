"""A chapter's slide deck in headless Chromium: reveal.js starts, a slide with math and a figure renders.

Screenshots go to artifacts/browser/slides-*.png. The deck is opened from disk (file://), as a teacher
would open it in a classroom without internet.
"""

from __future__ import annotations

from conftest import ARTIFACTS

from course_lib.tooling.slides import build_slides


def test_a_deck_shows_math_and_a_figure(browser, tmp_path):
    [deck] = build_slides(tmp_path / "slides", only="01_")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(deck.as_uri(), wait_until="load")
    page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=20_000)
    total = page.evaluate("() => Reveal.getTotalSlides()")
    assert total >= 10, total
    page.screenshot(path=str(ARTIFACTS / "slides-01_attention-title.png"))
    found = None
    for index in range(total):                      # the first slide with a typeset formula and a figure after it
        page.evaluate(f"() => Reveal.slide({index})")
        page.wait_for_timeout(400)
        math = page.evaluate("() => Reveal.getCurrentSlide().querySelectorAll('.MathJax, mjx-container').length")
        images = page.evaluate("() => [...Reveal.getCurrentSlide().querySelectorAll('img')]"
                               ".filter(i => i.complete && i.naturalWidth > 0).length")
        if math and images:
            found = index
            break
    assert found is not None, "no slide with both typeset math and a rendered figure"
    page.screenshot(path=str(ARTIFACTS / "slides-01_attention-math-figure.png"))
