"""The "inside the stages" section in headless Chromium: the three-stage comparison renders (answers, the
answer token's probability, lens lines, one head, two weight-change maps with their sentence), a shared
link restores its settings, and "where did it learn that" shows matches with their sources for a line the
base model writes; the section's questions are answered from those numbers (a wrong one gets the hint);
axe finds nothing serious, and nothing scrolls sideways at phone width.

One server (the tiny chat model as its default, so nothing waits for the 135M model), one page.
"""

from __future__ import annotations

import pytest
from phone_checks import sideways_scrollers, small_controls
from test_questions_browser import answer, ask

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def base_url():
    return None


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    from conftest import start_server

    runs = tmp_path_factory.mktemp("runs")
    with start_server("--model", "shakespeare-chat",
                      env={"PREDICTION_MACHINE_RUNS": str(runs), "OMP_NUM_THREADS": "1"}) as server:
        yield server.url


def axe_serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, context="#inside", options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}, "resultTypes": ["violations"]})
    return [f"{v['id']}: {[n['target'] for n in v['nodes'][:4]]}" for v in found.response["violations"]
            if v.get("impact") in ("serious", "critical")]


def test_three_stages_and_where_a_line_was_learned(page, url, artifacts):
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(url + "/#inside?q=Who+is+Hamlet%27s+mother%3F&layer=2&head=1")
    section = page.locator("#inside")
    page.wait_for_selector("#inside-stages tbody tr >> nth=2")
    assert page.locator("#inside-layer").input_value() == "2"
    assert page.locator("#inside-head").input_value() == "1"
    rows = section.locator("#inside-stages tbody tr")
    assert [rows.nth(i).get_attribute("data-stage") for i in range(3)] == [
        "shakespeare-base", "shakespeare-chat", "shakespeare-dpo"]
    assert "Gertrude" in rows.nth(1).inner_text() and "Gertrude" in rows.nth(2).inner_text()
    probs = [float(rows.nth(i).locator("td.num").get_attribute("data-prob")) for i in range(3)]
    assert probs[0] < 0.05 and probs[1] > 0.9  # fine-tuning taught the answer
    assert section.locator("#inside-lens polyline").count() == 3
    assert section.locator("#inside-attention .inside-head-row").count() == 3
    assert section.locator(".xp-heatmap").count() == 2 and section.locator(".xp-heatmap rect").count() == 72
    sft, dpo = (float(p.get_attribute("data-overall")) for p in section.locator("[data-overall]").all())
    assert 0 < dpo < sft
    assert "times as much" in section.locator("#inside-shows").inner_text()
    # Its questions are checked against these numbers: the stage table's and the weight maps'.
    form = ask(page, "inside", "highest_stage")
    verdict, said = answer(form, "shakespeare-base")  # under 5% above, against SFT's 90%
    assert verdict == "wrong" and "Hint:" in said
    stages = ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo"]
    assert answer(form, stages[probs.index(max(probs))])[0] == "right"
    form = ask(page, "inside", "larger_change")
    assert answer(form, "shakespeare-dpo")[0] == "wrong"  # DPO moved less than SFT, above
    verdict, said = answer(form, "shakespeare-chat")
    assert verdict == "right" and said.count("%") == 2, said
    page.wait_for_selector("#inside .figure-export button", state="attached")  # save buttons under the maps
    page.screenshot(path=str(artifacts / "inside-stages-desktop.png"), full_page=False)
    section.locator("#inside-stages-panel").screenshot(path=str(artifacts / "inside-stages-panel.png"))

    # Where did it learn that: the base model writes a line, and its matches are found with their sources.
    page.click("#inside-write")
    page.wait_for_selector("#inside-memorised")
    assert page.locator("#inside-text").input_value().startswith("Romeo:")
    page.wait_for_selector("#inside .inside-match")
    first = section.locator(".inside-match").first
    assert first.get_attribute("data-source") and int(first.get_attribute("data-line")) > 0
    assert "seed=" in page.evaluate("location.hash")
    # A quoted line of the plays is memorised: the score is 100 %, against a held-out baseline.
    quote = "Now is the winter of our discontent\nMade glorious summer by this sun of York;"
    page.fill("#inside-text", quote)
    page.click("#inside-look")
    page.wait_for_selector("#inside-memorised[data-score='1']")
    assert section.locator(".inside-match").first.get_attribute("data-source") == "Richard III"
    # A chat answer: the nearest fine-tuning data, and whether the question is new.
    page.select_option("#inside-model", "shakespeare-chat")
    page.click("#inside-write")
    page.wait_for_selector("#inside-nearest")
    assert page.locator("#inside-nearest").get_attribute("data-wording") == "new"  # Hero's father: unseen
    assert "SmolLM2" in section.locator("#inside-smollm2").inner_text()
    section.locator("#inside-source-panel").screenshot(path=str(artifacts / "inside-source-panel.png"))
    assert axe_serious(page) == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    page.locator("#inside-weights").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "inside-phone.png"))
    assert sideways_scrollers(page, "#inside") == []
    assert small_controls(page, "#inside") == []
    assert axe_serious(page) == []  # at phone width too (a box that scrolls must take the focus)
    questions = section.locator("details[data-questions='inside']")
    questions.screenshot(path=str(artifacts / "inside-questions-phone.png"))
    assert errors == []
