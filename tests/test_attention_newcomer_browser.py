"""The attention explorer as a newcomer meets it: readable labels, the keyboard, a phone, a shared link.

The percentages must meet WCAG AA contrast (4.5 : 1) on every background, arrow keys move
between the word chips, the example sentences fold away on a phone, no figure scrolls sideways there,
every control is at least 24 × 24 px, and a copied link opens the same view.
Screenshots: test-artifacts/attention-1280.png, attention-390.png (look at them).
"""

from __future__ import annotations

import re

import pytest
from conftest import wait_for_page
from test_attention_browser import READY, state

pytestmark = pytest.mark.browser


def luminance(rgb: tuple[int, ...]) -> float:
    def lin(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = rgb[:3]
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def rgb(text: str) -> tuple[int, ...]:
    return tuple(int(float(v)) for v in re.findall(r"[\d.]+", text)[:3])


def contrast(a: str, b: str) -> float:
    hi, lo = sorted([luminance(rgb(a)), luminance(rgb(b))], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def chip_contrasts(page) -> list[tuple[str, float, float]]:
    """(label, weight, contrast of the percentage against the chip) for every chip that is not masked."""
    rows = page.eval_on_selector_all(
        "#attention .att-item:not(.future)",
        "els => els.map(e => [e.querySelector('.att-w').textContent, Number(e.dataset.weight),"
        " getComputedStyle(e.querySelector('.att-w')).color, getComputedStyle(e).backgroundColor])")
    return [(label, w, contrast(fg, bg)) for label, w, fg, bg in rows]


def test_labels_contrast_keyboard_and_shared_link(page, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/#attention")
    page.wait_for_selector(READY, timeout=120_000)
    seen = []
    for query in range(12):  # every row of the default head: weights from 0 to the strongest
        page.focus(f'#attention .att-item[data-index="{query}"]')
        for label, w, ratio in chip_contrasts(page):
            assert ratio >= 4.5, (query, label, w, ratio)
            seen.append(w)
    assert max(seen) > 0.6 and min(seen) < 0.05  # the check covered dark and light backgrounds

    # Arrow keys: right and left move between words, Home and End jump; the sentence is one Tab stop.
    page.focus('#attention .att-item[data-index="3"]')
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.index") == "4" and state(page)["query"] == "4"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert state(page)["query"] == "2"
    page.keyboard.press("End")
    assert state(page)["query"] == "11"
    page.keyboard.press("Home")
    assert state(page)["query"] == "0"
    assert page.locator('#attention .att-item[tabindex="0"]').count() == 1
    # Singular and plural: the first word has 1 weight, and "the 11 later words".
    readout = page.locator("#attention .att-readout").text_content()
    assert "Its 1 weight adds up" in readout and "the 11 later words get 0" in readout, readout
    page.keyboard.press("End")
    assert "later" not in page.locator("#attention .att-readout").text_content()

    # Pick a layer, a head, the token view and a token: the address bar holds it all.
    page.select_option("#att-layer", "5")
    wait_for_page(page, "document.querySelector('#attention [data-mount]').dataset.layer === '5'")
    page.select_option("#att-head", "3")
    wait_for_page(page, "document.querySelector('#attention [data-mount]').dataset.head === '3'")
    page.check("#att-view-token")
    page.click('#attention .att-item[data-index="4"]')
    page.locator("#attention").screenshot(path=str(artifacts / "attention-1280.png"))
    link = page.url
    assert "layer=5" in link and "head=3" in link and "view=token" in link and "query=4" in link
    weights = page.eval_on_selector_all("#attention .att-item", "els => els.map(e => e.dataset.weight)")

    # The link, opened fresh, shows the same view: the same numbers on the same chips.
    page.goto("about:blank")
    page.goto(link)
    page.wait_for_selector(READY, timeout=120_000)
    s = state(page)
    assert (s["layer"], s["head"], s["view"], s["query"]) == ("5", "3", "token", "4")
    assert (
        page.eval_on_selector_all("#attention .att-item", "els => els.map(e => e.dataset.weight)") == weights
    )


def test_shared_link_with_own_sentence_and_bad_values(page):
    page.goto(
        "/#attention?sentence=" + "My%20dog%20ran%20because%20it%20was%20late." + "&layer=99&head=x&view=word"
    )
    page.wait_for_selector(READY, timeout=120_000)
    words = page.eval_on_selector_all("#attention .att-item .att-text", "els => els.map(e => e.textContent)")
    assert words[:3] == ["My", "dog", "ran"]
    assert page.input_value("#att-text") == "My dog ran because it was late."
    s = state(page)
    # layer 99 does not exist: the average, not a broken figure
    assert s["view"] == "word" and s["layer"] == "avg"


def test_phone_examples_fold_and_nothing_scrolls_sideways(page, artifacts):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/#attention")
    page.wait_for_selector(READY, timeout=120_000)
    page.wait_for_selector("#attention .att-example", state="attached")
    box = page.locator("#attention .att-examples-box")
    assert box.get_attribute("open") is None and page.locator("#attention .att-example").first.is_hidden()
    assert re.match(r"Example sentences \(6\)", box.locator("summary").text_content())
    page.locator("#attention").screenshot(path=str(artifacts / "attention-390.png"))
    top = page.locator("#attention .att-sentence").bounding_box()["y"] - box.bounding_box()["y"]
    assert top < 600, top  # from the folded examples to the word chips: within one 844-px screen
    box.locator("summary").click()
    assert page.locator("#attention .att-example").first.is_visible()
