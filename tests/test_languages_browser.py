"""The page in Spanish and Arabic, in a real browser.

A first visit takes the browser's language; the masthead's picker (a labelled select, usable from the
keyboard) switches and is remembered. The Arabic page mirrors (dir="rtl") while token strips, heatmaps
and charts keep reading left to right, nothing scrolls sideways, and the model's own text is not
translated. axe finds no serious or critical violation in either language. Screenshots of the Arabic
page at desktop and phone width go to test-artifacts/. The figure of one sentence in seven languages
shows the tokenizer's own counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.phone_checks import PHONE

pytestmark = pytest.mark.browser

CONTENT = Path(__file__).resolve().parent.parent / "prediction_machine" / "web" / "static" / "content"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# Containers whose order is an axis (the sequence of tokens, the layers): left to right in every language.
LEFT_TO_RIGHT = ["#prompt-tokens", "#attention .att-sentence", "#attention .att-map", "#bp-boundary"]


def words(language: str, section: str) -> dict:
    return json.loads((CONTENT / language / f"{section}.json").read_text(encoding="utf-8"))


def open_page(browser, base_url, locale: str, viewport=None, console=None):
    context = browser.new_context(
        base_url=base_url, locale=locale, viewport=viewport or {"width": 1280, "height": 900}
    )
    page = context.new_page()
    if console is not None:
        page.on("console", lambda m: console.append(m.text))
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    page.wait_for_selector("#attention .att-item", timeout=120_000)
    return context, page


def serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = (
        Axe()
        .run(page, options={"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]})
        .response["violations"]
    )
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes'][:5]]}"
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]


def untranslated(console: list[str]) -> list[str]:
    """Keys the page looked up and found only in English (words.js warns), or found nowhere."""
    return [m for m in console if m.startswith(("No es words", "No ar words", "No words for"))]


def test_first_visit_follows_the_browser_and_the_picker_switches_and_remembers(browser, base_url):
    console: list[str] = []
    context, page = open_page(browser, base_url, "es-MX", console=console)
    spanish = words("es", "index")
    assert page.get_attribute("html", "lang") == "es" and page.get_attribute("html", "dir") == "ltr"
    assert page.inner_text("h1") == spanish["title"]
    assert page.inner_text("#stage-tokenizer-title").startswith(words("es", "inference")["title_tokenizer"])
    assert page.get_attribute(".masthead nav", "aria-label") == spanish["sections"]
    assert page.inner_text("label[for=language]") == spanish["language"]
    # the model's text stays as the model reads it: the example prompt's tokens are English
    assert "capital" in page.inner_text("#prompt-tokens")
    assert not untranslated(console), untranslated(console)
    bad = serious(page)
    assert not bad, "\n".join(bad)
    # The picker from the keyboard: focus it, choose English, and the page reloads in English.
    page.get_by_label(spanish["language"], exact=True).focus()
    with page.expect_navigation():
        page.keyboard.press("ArrowUp")  # the options are English, Español, العربية
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == words("en", "index")["title"]
    page.reload()  # remembered over the browser's Spanish
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    assert page.get_attribute("html", "lang") == "en"
    context.close()


def test_the_arabic_page_mirrors_while_figures_read_left_to_right(browser, base_url, artifacts):
    console: list[str] = []
    context, page = open_page(browser, base_url, "ar", console=console)
    assert page.get_attribute("html", "lang") == "ar" and page.get_attribute("html", "dir") == "rtl"
    assert page.inner_text("h1") == words("ar", "index")["title"]
    page.wait_for_selector("#bp-boundary", timeout=60_000)
    direction = "(s) => getComputedStyle(document.querySelector(s)).direction"
    assert page.evaluate(direction, "main p") == "rtl"
    for selector in LEFT_TO_RIGHT:
        assert page.evaluate(direction, selector) == "ltr", f"{selector} should read left to right"
    # The first token chip sits left of the second, as on the English page.
    boxes = [page.locator("#prompt-tokens .token").nth(i).bounding_box() for i in (0, 1)]
    assert boxes[0]["x"] < boxes[1]["x"]
    assert "capital" in page.inner_text("#prompt-tokens")
    # A short generation draws every stage's figure, so axe and the screenshots see them in Arabic too.
    page.fill("#max-tokens", "3")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=180_000)
    for selector in ("#stage-embedding canvas", "#stage-transformer svg", "#timeline"):
        assert page.evaluate(direction, selector) == "ltr", f"{selector} should read left to right"
    assert not untranslated(console), untranslated(console)
    bad = serious(page)
    assert not bad, "\n".join(bad)
    page.screenshot(path=str(artifacts / "arabic-desktop.png"))
    page.click("#languages summary")  # the one-sentence figure, its lesson in Arabic
    page.wait_for_selector("#languages[data-ready='1']", timeout=60_000)
    assert page.evaluate(direction, "#languages .lang-tokens") == "ltr"
    page.locator("#stage-tokenizer").screenshot(path=str(artifacts / "arabic-tokenizer-desktop.png"))
    context.close()

    context, page = open_page(browser, base_url, "ar", viewport=PHONE)
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 1, f"the Arabic page scrolls sideways by {wide} px on a phone"
    page.screenshot(path=str(artifacts / "arabic-phone.png"))
    page.locator("#stage-tokenizer").screenshot(path=str(artifacts / "arabic-tokenizer-phone.png"))
    context.close()


def test_one_sentence_many_languages_shows_the_tokenizers_counts(browser, base_url):
    context, page = open_page(browser, base_url, "en")
    page.click("#languages summary")
    page.wait_for_selector("#languages[data-ready='1']", timeout=60_000)
    rows = page.locator("#languages tbody tr")
    shown = {
        rows.nth(i).get_attribute("data-language"): int(rows.nth(i).locator(".lang-count").inner_text())
        for i in range(rows.count())
    }
    sentences = {
        row.get_attribute("data-language"): row.locator(".lang-sentence").inner_text() for row in rows.all()
    }
    assert len(shown) == 7 and {"en", "es", "ar", "zh", "hi", "ru"} <= set(shown)
    for code, text in sentences.items():
        counted = httpx.post(base_url + "/api/tokenize", json={"text": text}, timeout=30).json()["count"]
        assert shown[code] == counted, (code, text)
    assert list(shown.values()) == sorted(shown.values()), "rows go from the fewest tokens to the most"
    assert shown["en"] < shown["hi"], "the same meaning costs English fewer of this model's tokens"
    lesson = page.inner_text("#languages .lang-lesson")
    assert f"{max(shown.values()) / min(shown.values()):.1f}".rstrip("0").rstrip(".") in lesson
    context.close()
