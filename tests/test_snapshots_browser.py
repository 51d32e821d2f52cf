"""The circuits panel in headless Chromium: the scrubber moves the heatmaps in step with the loss curve.

One server (the stub model: the panel needs no language model, only snapshots) and one page. The
shipped record is scrubbed with the keyboard and checked against its JSON; then a 12-step live run
on a short text sends its snapshots to the same panel. Screenshots at desktop and phone width.
"""

from __future__ import annotations

import time

import httpx
import pytest
from phone_checks import PHONE, sideways_scrollers

pytestmark = pytest.mark.browser
TEXT = "To be, or not to be, that is the question. Whether 'tis nobler in the mind to suffer.\n" * 12


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory, stub):
    from conftest import start_server

    runs = tmp_path_factory.mktemp("runs")
    env = {"PREDICTION_MACHINE_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    with start_server("--model", stub, env=env) as server:
        yield server.url


def shown(page) -> dict:
    """What the panel shows now: the step in each figure and the induction heatmap's scores."""
    return page.evaluate("""() => {
      const panel = document.querySelector('#cur-circ');
      const cells = [...document.querySelectorAll('#circ-induction rect[data-score]')];
      return { panel: Number(panel.dataset.step),
               maps: Number(panel.querySelector('.circ-maps').dataset.step),
               curve: Number(panel.querySelector('.circ-now').dataset.step),
               scores: cells.map((c) => Number(c.dataset.score)),
               lens: panel.querySelectorAll('.circ-lens li').length };
    }""")


def until_still(page, locator, quiet_s: float = 1.0, timeout_s: float = 60) -> None:
    """Wait until the page's height and the element's place have not changed for `quiet_s`: sections
    above may still be loading and growing, and a click aimed before they stop lands elsewhere."""
    def where():
        box = locator.bounding_box()
        return page.evaluate("() => document.documentElement.scrollHeight"), box and (box["x"], box["y"])

    last, since, end = where(), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < end, f"the page kept moving for {timeout_s} s"
        page.wait_for_timeout(100)
        now = where()
        if now != last:
            last, since = now, time.monotonic()


def test_the_scrubber_moves_the_heatmaps_in_step_with_the_loss_curve(page, lab_url, artifacts):
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    name = httpx.get(lab_url + "/api/curriculum/snapshots", timeout=30).json()["shipped"][0]
    doc = httpx.get(f"{lab_url}/api/curriculum/snapshots/{name}", timeout=30).json()
    page.goto(lab_url + "/#curriculum")
    page.wait_for_selector("#cur-circ[data-step]")
    last = doc["snapshots"][-1]
    assert shown(page)["panel"] == last["step"]  # it opens on the end of training

    scrub = page.locator("#cur-circ-step")
    scrub.focus()
    page.keyboard.press("Home")
    for i in (0, 1, 2, 3):
        now = shown(page)
        snap = doc["snapshots"][i]
        assert now["panel"] == now["maps"] == now["curve"] == snap["step"], (i, now)
        assert now["scores"] == [v for row in snap["induction"] for v in row]
        assert now["lens"] == len(snap["lens"])
        page.keyboard.press("ArrowRight")
    assert f"step {doc['snapshots'][4]['step']}" in page.locator("#cur-circ .circ-step").inner_text()
    formed = doc["formed"]
    if formed:  # the formation step is marked on the loss curve
        assert page.locator("#circ-loss .circ-formed").get_attribute("data-step") == str(formed["step"])
    else:
        assert "No head's induction score reached" in page.locator("#cur-circ .circ-finding").inner_text()

    # picking a head redraws its attention and puts it in the shared link: with the mouse, then the keyboard
    cell = lambda row, col: page.locator(f"#circ-induction rect[data-row='{row}'][data-col='{col}']")  # noqa: E731
    until_still(page, cell(0, 1))
    cell(0, 1).click()
    assert "L0H1" in page.locator("#circ-attention").get_attribute("aria-label")
    cell(1, 2).focus()
    page.keyboard.press("Enter")
    assert "L1H2" in page.locator("#circ-attention").get_attribute("aria-label")
    assert "circ_head=L1H2" in page.url and "circ_step=4" in page.url
    page.locator("#cur-circ").screenshot(path=str(artifacts / "circuits-desktop.png"))

    # a live run: its snapshot events arrive in the same panel
    page.select_option("#cur-corpus", "text")
    page.fill("#cur-text", TEXT)
    page.select_option("#cur-tokenizer", "char")
    page.fill("#cur-steps", "12")
    page.click("[data-action='start-pretrain']")
    page.wait_for_function("() => document.querySelector('#cur-circ-record').value === 'live'"
                           " && document.querySelector('#cur-circ').dataset.step === '12'")
    live = shown(page)
    assert live["maps"] == live["curve"] == 12 and len(live["scores"]) == 16  # 4 layers x 4 heads
    page.keyboard.press("Tab")  # leave the start button; the scrubber still answers
    scrub.focus()
    page.keyboard.press("Home")
    assert shown(page)["curve"] == 0

    page.set_viewport_size(PHONE)
    page.locator("#cur-circ").scroll_into_view_if_needed()
    page.locator("#cur-circ").screenshot(path=str(artifacts / "circuits-phone.png"))
    assert not sideways_scrollers(page, "#cur-circ")
    assert not errors, errors


def test_the_panel_passes_axe(page, lab_url):
    from axe_playwright_python.sync_playwright import Axe

    page.goto(lab_url + "/#curriculum")
    page.wait_for_selector("#cur-circ[data-step]", timeout=120_000)
    found = Axe().run(page, context="#cur-circ", options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}, "resultTypes": ["violations"]})
    bad = [v["id"] for v in found.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, bad
