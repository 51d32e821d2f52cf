"""Plain words: every term of the trade is explained at its first use, by mouse, touch and keyboard,
and the glossary at the end of the page lists the same definitions."""

import pytest
from conftest import generate_on_page

from tests.phone_checks import PHONE, sideways_scrollers, small_controls

pytestmark = pytest.mark.browser
TERMS = ["logit", "logit lens", "entropy", "bits", "probability mass", "attention sink", "KV cache",
         "temperature", "top-k", "top-p", "min-p", "token", "embedding", "softmax"]


def test_each_term_is_explained_where_it_is_first_used_and_in_the_glossary(page):
    generate_on_page(page, "What is the capital of France?")
    shown = {
        t.lower()
        for t in page.locator("#inference .term-button").evaluate_all("els => els.map(e => e.dataset.term)")
    }
    missing = [t for t in TERMS if t.lower() not in shown]
    assert not missing, f"terms with no explanation on the inference page: {missing}"
    glossary = dict(
        zip(
            page.locator("#glossary-list dt").all_inner_texts(),
            page.locator("#glossary-list dd").all_inner_texts(),
            strict=True,
        )
    )
    lower = {k.lower(): v for k, v in glossary.items()}
    for word in TERMS:
        assert lower.get(word.lower(), "").endswith("."), f"the glossary has no sentence for {word!r}"
    # the popover says what the glossary says
    button = page.locator("#inference .term-button[data-term='KV cache']").first
    note = page.locator(f"#{button.get_attribute('aria-controls')}")
    assert note.is_hidden()
    # keyboard: focus, Enter opens, Escape closes
    button.focus()
    page.keyboard.press("Enter")
    assert note.is_visible() and button.get_attribute("aria-expanded") == "true"
    assert note.inner_text() == lower["kv cache"]
    page.keyboard.press("Escape")
    assert note.is_hidden()
    # mouse: hovering shows it, leaving hides it
    button.hover()
    assert note.is_visible()
    page.mouse.move(0, 0)
    assert note.is_hidden()


def test_terms_open_with_a_tap_on_a_phone(browser, base_url, artifacts):
    context = browser.new_context(base_url=base_url, viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    generate_on_page(page, "What is the capital of France?", max_new=4)
    button = page.locator("#inference .term-button[data-term='top-p']").first
    note = page.locator(f"#{button.get_attribute('aria-controls')}")
    button.scroll_into_view_if_needed()
    button.tap()
    assert note.is_visible()
    box, screen = note.bounding_box(), page.viewport_size["width"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= screen + 1, "the explanation runs off the screen"
    button.tap()
    assert note.is_hidden()
    assert not small_controls(page, "#glossary")
    assert not sideways_scrollers(page, "#glossary")
    context.close()
