"""'Why it makes things up' in headless Chromium, on the shared server (SmolLM2): a made-up answer token by
token, the tiny chat model's calibration chart, the fact given in the prompt, two temperatures, and the
'I do not know' counts; the section's questions answered from what the page shows; then axe and
screenshots at desktop and phone width.

One page for the module; every panel's numbers are checked against the JSON API's own answer where the
page shows them.
"""

from __future__ import annotations

import httpx
import pytest
from phone_checks import sideways_scrollers, small_controls
from test_questions_browser import answer, ask

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture(scope="module")
def mu(browser, server_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(180_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server_url + "/#makes_up")
    page.wait_for_selector("#mu-answer")
    yield page, errors
    page.close()


def test_a_made_up_answer_token_by_token(mu, server_url):
    page, errors = mu
    page.click("#mu-answer")
    page.wait_for_selector("#mu-tokens .mu-token")
    api = httpx.post(f"{server_url}/api/makes-up/answer", json={"question": "Who is Hamlet's mother?"},
                     timeout=120).json()
    shown = [float(p) for p in page.eval_on_selector_all("#mu-tokens .mu-token",
                                                          "els => els.map(e => e.dataset.prob)")]
    # The page's request and this one are two computations, and their last bits can differ: the same answer
    # on one torch thread and on two differs by up to 2e-6 after 24 tokens (measured), and a fresh-clone run
    # once saw 6e-6 here. The page shows tenths of a percent; a number not from this answer is far off.
    assert shown == pytest.approx([t["prob"] for t in api["tokens"]], abs=1e-4)
    assert page.inner_text("#mu-tokens .mu-answer-text bdi") == api["answer"]
    assert page.get_attribute("#mu-tokens .verdict", "data-right") == str(api["verdict"]["right"]).lower()
    assert page.evaluate("document.activeElement.id") == "mu-answer"  # focus stays on the control
    assert not errors, errors


def test_the_calibration_chart_draws_every_answer(mu, server_url):
    page, errors = mu
    page.click("#mu-measure-tiny")
    page.wait_for_selector("#mu-chart svg .mu-dot")
    api = httpx.post(f"{server_url}/api/makes-up/calibration", json={"model": "shakespeare-chat"},
                     timeout=120).json()
    dot = "e => [Number(e.dataset.confidence), e.dataset.right === 'true']"
    dots = page.eval_on_selector_all("#mu-chart .mu-dot", f"els => els.map({dot})")
    assert sorted(dots) == sorted([[p["confidence"], p["right"]] for p in api["points"]])
    bands = page.eval_on_selector_all("#mu-chart .mu-band", "els => els.map(e => Number(e.dataset.count))")
    assert bands == [b["count"] for b in api["bands"] if b["count"]]
    summary = page.inner_text("#mu-summary")
    assert f"right on {api['right']} of {api['count']} questions" in summary
    assert page.locator("#mu-points tbody tr").count() == api["count"]
    assert f"shakespeare-chat, {api['count']} questions" in page.get_attribute("#mu-chart svg", "aria-label")
    assert not errors, errors


def test_context_temperature_and_dont_know(mu, server_url):
    page, errors = mu
    page.click("#mu-context")
    page.wait_for_selector("#mu-sides [data-side='with'] .verdict")
    # the fact in the prompt: Hamlet's mother is named, by the stated rule
    assert page.get_attribute("#mu-sides [data-side='with'] .verdict", "data-right") == "true"
    page.click("#mu-sample")
    page.wait_for_selector("#mu-temperature-table tbody tr")
    assert page.locator("#mu-temperature-table tbody tr").count() == 2
    assert page.locator("#mu-temperature-table .mu-samples li").count() == 12
    page.click("#mu-dont-know-run")
    page.wait_for_selector("#mu-dont-know-table tbody tr")
    api = httpx.post(f"{server_url}/api/makes-up/dont-know", json={"model": "shakespeare-dpo"},
                     timeout=60).json()
    row = page.inner_text("#mu-dont-know-table tr[data-model='shakespeare-dpo']")
    assert f"{api['dont_know']} of {api['count']}" in row
    assert "0 of 492" in page.inner_text("#mu-idk-data")  # no fine-tuning answer says it
    assert not errors, errors


def test_its_questions_are_checked_against_the_page(mu):
    """The questions are checked against the answer's tokens and the calibration chart drawn above."""
    page, errors = mu
    cards = page.eval_on_selector_all("#mu-tokens .mu-token", "els => els.map(e => [e.querySelector("
                                      "'.token-text').textContent, Number(e.dataset.prob)])")
    least, most = min(cards, key=lambda c: c[1]), max(cards, key=lambda c: c[1])
    form = ask(page, "makes_up", "least_likely")
    if most[1] > least[1]:
        verdict, said = answer(form, most[0].replace("␣", " ").strip())
        assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, least[0].replace("␣", " ").strip())
    assert verdict == "right", said
    dots = page.eval_on_selector_all("#mu-chart .mu-dot", "els => els.map(e =>"
                                     " [Number(e.dataset.confidence), e.dataset.right === 'true'])")
    right = sum(r for _, r in dots)
    form = ask(page, "makes_up", "calibration_right")
    verdict, said = answer(form, right + 1)
    assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, right)
    assert verdict == "right" and f"{right} of {len(dots)}" in said
    sure_wrong = sum(not r and c >= 0.5 for c, r in dots)
    assert answer(ask(page, "makes_up", "confident_wrong"), sure_wrong)[0] == "right"
    assert not errors, errors


def test_layout_accessibility_and_screenshots(mu, artifacts):
    page, errors = mu
    from axe_playwright_python.sync_playwright import Axe

    section = page.locator("#makes_up")
    section.screenshot(path=str(artifacts / "makes-up-desktop.png"))
    found = Axe().run(page, context="#makes_up", options={"runOnly": {"type": "tag", "values": TAGS},
                                                          "resultTypes": ["violations"]})
    bad = [(v["id"], [n["target"] for n in v["nodes"][:5]]) for v in found.response["violations"]
           if v.get("impact") in ("serious", "critical")]
    assert not bad, bad
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    assert not sideways_scrollers(page, "#makes_up"), sideways_scrollers(page, "#makes_up")
    assert not small_controls(page, "#makes_up"), small_controls(page, "#makes_up")
    section.screenshot(path=str(artifacts / "makes-up-phone.png"))
    assert not errors, errors
