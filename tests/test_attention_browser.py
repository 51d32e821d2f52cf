"""The attention explorer in headless Chromium: the page shows exactly the API's weights."""

from __future__ import annotations

import httpx
import pytest
from conftest import wait_for_page

pytestmark = pytest.mark.browser

EXAMPLE = "The animal didn't cross the street because it was too tired."
READY = '#attention [data-mount][data-ready="1"]'


def api_row(server_url: str, text: str, layer: int, head: int, view: str, query: int) -> list[float]:
    r = httpx.post(
        f"{server_url}/api/attention",
        json={"text": text, "layers": [layer], "heads": [head], "view": view},
        timeout=120,
    )
    r.raise_for_status()
    key = "attention" if view == "token" else "word_attention"
    return r.json()[key]["maps"][0][0][query]


def page_weights(page) -> list[float]:
    return [
        float(w)
        for w in page.eval_on_selector_all("#attention .att-item", "els => els.map(e => e.dataset.weight)")
    ]


def state(page) -> dict:
    return page.eval_on_selector("#attention [data-mount]", "e => ({...e.dataset})")


def test_hover_focus_and_own_sentence(page, server_url, artifacts):
    errors, dialogs = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_viewport_size({"width": 1100, "height": 1400})
    page.goto("/#attention")
    page.wait_for_selector(READY, timeout=120_000)

    # --- hover "it" in the example sentence (word view by default: "it" is word 7)
    it = page.locator('#attention .att-item[data-index="7"]')
    assert it.locator(".att-text").text_content() == "it"
    page.hover('#attention .att-item[data-index="2"]')
    it.hover()
    s = state(page)
    assert s["query"] == "7" and s["view"] == "word"
    layer, head = int(s["layer"]), int(s["head"])
    shown = page_weights(page)
    expected = api_row(server_url, EXAMPLE, layer, head, "word", 7)
    assert shown == expected  # the very numbers the API returns for that row, layer and head
    assert sum(shown) == pytest.approx(1.0, abs=1e-3)
    assert all(w == 0 for w in shown[8:])  # the causal mask: later words get nothing
    assert page.locator('#attention .att-item[data-index="9"] .att-w').text_content() == "masked"
    top = max(range(len(shown)), key=lambda k: shown[k])
    label = page.locator(f'#attention .att-item[data-index="{top}"] .att-w').text_content()
    assert label == f"{shown[top] * 100:.{1 if shown[top] < 0.1 else 0}f}%"  # visible numbers agree too

    # --- switch the head: the weights change, and still match the API
    other = (head + 1) % 9
    page.select_option("#att-head", str(other))
    wait_for_page(page, f"document.querySelector('#attention [data-mount]').dataset.head === '{other}'")
    it.hover()
    changed = page_weights(page)
    assert changed != shown
    assert changed == api_row(server_url, EXAMPLE, layer, other, "word", 7)

    # --- keyboard focus works like hover: the arrow key from "because" lands on "it"
    page.mouse.move(0, 0)
    page.hover('#attention .att-item[data-index="1"]')
    page.mouse.move(0, 0)
    page.focus('#attention .att-item[data-index="6"]')
    assert state(page)["query"] == "6"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.index") == "7"
    assert state(page)["query"] == "7"
    assert page_weights(page) == changed

    page.locator("#attention").screenshot(path=str(artifacts / "attention.png"))

    # --- the learner's own sentence (with markup in it, which must show as text)
    own = "My cat <img src=x onerror=alert(1)> sat because it was cold."
    page.fill("#att-text", own)
    page.press("#att-text", "Enter")
    wait_for_page(
        page,
        "document.querySelector('#attention .att-item .att-text').textContent === 'My' && "
        "document.querySelector('#attention [data-mount]').dataset.ready === '1'",
    )
    words = page.eval_on_selector_all("#attention .att-item .att-text", "els => els.map(e => e.textContent)")
    # shown verbatim, as text (word view drops the spaces)
    assert "<imgsrc=xonerror=alert(1)>" in "".join(words)
    assert page.locator("#attention img").count() == 0
    s = state(page)
    q = int(s["query"])
    assert words[q] == "it"
    new = page_weights(page)
    assert new == api_row(server_url, own, int(s["layer"]), int(s["head"]), "word", q)
    assert sum(new) == pytest.approx(1.0, abs=1e-3)

    # --- token view: every token gets its own chip, with the exact traced weights
    page.check("#att-view-token")
    wait_for_page(page, "document.querySelector('#attention [data-mount]').dataset.view === 'token'")
    s = state(page)
    assert page_weights(page) == api_row(
        server_url, own, int(s["layer"]), int(s["head"]), "token", int(s["query"])
    )
    tokens = page.eval_on_selector_all("#attention .att-item .att-text", "els => els.map(e => e.textContent)")
    assert "".join(tokens).replace("␣", " ") == own

    page.locator("#attention").screenshot(path=str(artifacts / "attention-own.png"))
    assert not dialogs and not errors


def test_grid_click_and_breakdown(page, server_url, artifacts):
    page.set_viewport_size({"width": 375, "height": 900})
    page.goto("/#attention")
    page.wait_for_selector(READY, timeout=120_000)
    assert page.locator("#attention .att-cell").count() == 270
    page.click('#attention .att-cell[data-layer="16"][data-head="0"]')
    wait_for_page(page, "document.querySelector('#attention [data-mount]').dataset.layer === '16'")
    assert state(page)["head"] == "0"
    assert page.input_value("#att-layer") == "16"
    assert page.locator("#attention .att-cell.selected").count() == 1
    # the grid is one tab stop; arrow keys move the selection
    page.focus('#attention .att-cell[data-layer="16"][data-head="0"]')
    page.keyboard.press("ArrowRight")
    wait_for_page(page, "document.querySelector('#attention [data-mount]').dataset.head === '1'")
    assert page.evaluate("document.activeElement.dataset.head") == "1"
    assert page.locator('#attention .att-cell[tabindex="0"]').count() == 1
    page.click("#attention .att-deep summary")
    page.wait_for_selector("#attention .att-breakdown tbody tr", timeout=60_000)
    rows = page.locator("#attention .att-breakdown tbody tr").count()
    assert rows == 13
    note = page.locator("#attention .att-deep-body p.note").text_content()
    assert "largest difference" in note
    page.locator("#attention .att-deep").screenshot(path=str(artifacts / "attention-breakdown-phone.png"))
    page.evaluate(
        "() => document.querySelector('#attention .att-examples').scrollIntoView({behavior: 'instant'})"
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "attention-phone.png"))
    # no horizontal overflow of the page on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1

    # a measured head's "show" button selects it, on the sentence and token where it was measured
    ref = httpx.get(f"{server_url}/api/attention/examples", timeout=120).json()["prominent"][-1]
    assert ref["kind"] == "referent"
    page.wait_for_selector("#attention .att-show >> nth=3")
    page.locator("#attention .att-show").nth(3).click()
    wait_for_page(
        page,
        f"document.querySelector('#attention [data-mount]').dataset.layer === '{ref['layer']}' && "
        f"document.querySelector('#attention [data-mount]').dataset.head === '{ref['head']}'",
    )
    s = state(page)
    # The view stays the learner's (words); the word holding the measured token is selected,
    # and the status says so.
    tokens = httpx.post(
        f"{server_url}/api/attention",
        json={"text": EXAMPLE, "layers": [0], "heads": [0], "view": "word"},
        timeout=120,
    ).json()
    word = next(i for i, w in enumerate(tokens["words"]) if ref["query"] in w["tokens"])
    assert s["view"] == "word" and s["query"] == str(word)
    assert "in the word view" in page.locator("#attention .att-status").text_content()
    animal = float(page.get_attribute('#attention .att-item[data-index="1"]', "data-weight"))
    assert animal == pytest.approx(ref["details"]["to_animal"], abs=1e-4)


def test_long_sentence_loads_one_layer_at_a_time(page, server_url):
    """Over the payload bound, the page pages by layer instead of asking for everything."""
    long = (
        "When the old lighthouse keeper finally climbed the stairs at dawn, he found that the lamp, "
        "which had burned all night, was still warm."
    )
    page.goto("/#attention")
    page.wait_for_selector(READY, timeout=120_000)
    page.fill("#att-text", long)
    page.press("#att-text", "Enter")
    wait_for_page(
        page, "document.querySelector('#attention .att-status').textContent.includes('each layer loads')"
    )
    wait_for_page(page, "document.querySelector('#attention [data-mount]').dataset.ready === '1'")
    page.select_option("#att-layer", "2")
    wait_for_page(
        page,
        "document.querySelector('#attention [data-mount]').dataset.layer === '2' && "
        "document.querySelector('#attention [data-mount]').dataset.ready === '1'",
    )
    s = state(page)
    assert page_weights(page) == api_row(server_url, long, 2, int(s["head"]), "word", int(s["query"]))
