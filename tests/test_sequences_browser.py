"""One machine, any sequence, in headless Chromium: draw a digit step by step, paint a row and
complete it, compose a tune and hear it scheduled through Web Audio, and the phone layout.

An init script wraps AudioContext before the page loads, so the test can see that a context
was made and how many oscillators were started (headless Chromium has no speakers, but the
Web Audio graph runs).
"""

from __future__ import annotations

import shutil

import pytest

from prediction_machine.training.curriculum import runs

pytestmark = pytest.mark.browser

SPY = """
(() => {
  const Real = window.AudioContext || window.webkitAudioContext;
  window.__audio = { contexts: 0, started: 0, frequencies: [] };
  if (!Real) return;
  class Spy extends Real {
    constructor(...a) { super(...a); window.__audio.contexts++; }
    createOscillator() {
      const osc = super.createOscillator();
      const start = osc.start.bind(osc);
      osc.start = (...a) => {
        window.__audio.started++;
        window.__audio.frequencies.push(osc.frequency.value);
        return start(...a);
      };
      return osc;
    }
  }
  window.AudioContext = Spy;
})();
"""


@pytest.fixture
def seq_page(page, base_url):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(SPY)
    page.set_default_timeout(60_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base_url + "/#sequences")
    page.wait_for_selector("#pixel-grid")
    yield page
    assert errors == []


def bar_probs(page, box: str) -> list[str]:
    return page.eval_on_selector_all(f"{box} .dist-bar", "bars => bars.map(b => b.dataset.prob)")


def test_draw_a_digit_step_by_step(seq_page, artifacts):
    page = seq_page
    page.select_option("#digit-pick", "7")
    page.click("#digit-step")
    page.wait_for_selector("#digit-dist .dist-bar")
    assert page.get_attribute("#pixel-grid", "data-filled") == "1"
    assert len(bar_probs(page, "#digit-dist")) == 17
    first = bar_probs(page, "#digit-dist")
    seen = {tuple(first)}
    for n in range(2, 22):
        page.click("#digit-step")
        page.wait_for_function(f"() => document.querySelector('#pixel-grid').dataset.filled === '{n}'")
        seen.add(tuple(bar_probs(page, "#digit-dist")))
    assert len(seen) > 5, "the distribution bars should change from pixel to pixel"
    assert "Pixel 21 of 64" in page.inner_text("#digit-dist-caption")
    assert (
        "u =" in page.inner_text("#digit-dist .draw-text")
        and page.locator("#digit-dist .u-marker").count() == 1
    )
    page.click("#digit-play")
    page.wait_for_selector("#digit-verdict")
    assert page.get_attribute("#pixel-grid", "data-filled") == "64"
    assert "The classifier sees a" in page.inner_text("#digit-verdict")  # "a 3" or "an 8"
    page.locator("#seq-digits").screenshot(path=str(artifacts / "sequences-digit-desktop.png"))


def test_paint_a_row_and_complete_it(seq_page, artifacts):
    page = seq_page
    page.select_option("#digit-pick", "1")
    page.click(".brush[data-level='16']")
    for i in (3, 4, 11, 12):
        page.click(f".pixel[data-index='{i}']")
    # the keyboard paints too: arrows move, Enter paints with the brush (key 2 picks grey 8)
    page.focus(".pixel[data-index='12']")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    assert "yours" in page.get_attribute(".pixel[data-index='13']", "class")
    page.click("#digit-complete")
    page.wait_for_selector("#digit-verdict")
    assert page.get_attribute("#pixel-grid", "data-filled") == "64"
    assert "Done: your 2 rows, then 48 pixels drawn by the model" in page.inner_text("#digit-status")
    for i in (3, 4, 11, 12, 13):
        assert "yours" in page.get_attribute(f".pixel[data-index='{i}']", "class")
    assert "yours" not in page.get_attribute(".pixel[data-index='20']", "class")
    page.locator("#seq-digits").screenshot(path=str(artifacts / "sequences-digit-painted.png"))


def test_compose_plays_notes_through_web_audio(seq_page, artifacts):
    page = seq_page
    page.fill("#melody-start", "")
    page.click("#melody-keyboard [data-pitch='67']")  # G4 from the on-screen keyboard
    page.fill("#melody-start", page.input_value("#melody-start") + " G4 D5:2")
    assert page.input_value("#melody-start") == "G4 G4 D5:2"
    for _ in range(8):
        page.click("#melody-step")
    page.wait_for_selector("#melody-dist .dist-bar")
    assert int(page.get_attribute("#piano-roll", "data-notes")) >= 3 + 3
    audio = page.evaluate("window.__audio")
    assert audio["contexts"] >= 1, "no AudioContext was created"
    assert audio["started"] >= 4, audio  # the key press, then each completed note as it was drawn
    assert min(audio["frequencies"]) > 100 and max(audio["frequencies"]) < 2000
    page.click("#melody-listen")
    assert page.evaluate("window.__audio.started") > audio["started"]
    page.locator("#seq-melody").screenshot(path=str(artifacts / "sequences-melody-desktop.png"))
    page.fill("#melody-start", "H9")
    page.click("#melody-compose")
    page.wait_for_selector("#melody-status .error")
    assert "start" in page.inner_text("#melody-status .error")


def test_shipped_numbers_and_phone_width(seq_page, artifacts):
    page = seq_page
    page.wait_for_selector("#digits-nll")
    assert page.locator("#digits-recognition tbody tr").count() == 10
    page.wait_for_selector("#melody-range")
    page.locator("#seq-training").screenshot(path=str(artifacts / "sequences-training-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#digit-new")
    page.wait_for_selector("#digit-verdict")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392, f"the page scrolls sideways on a phone ({width}px)"
    grid = page.locator("#pixel-grid").bounding_box()
    assert grid["width"] <= 390 and grid["width"] > 200
    page.locator("#seq-digits").screenshot(path=str(artifacts / "sequences-digit-phone.png"))
    for _ in range(6):
        page.click("#melody-step")
    page.wait_for_selector("#melody-dist .dist-bar")
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    page.locator("#seq-melody").screenshot(path=str(artifacts / "sequences-melody-phone.png"))


def test_train_live_from_noise(seq_page, artifacts):
    page = seq_page
    page.set_default_timeout(180_000)
    page.fill("#seq-train-steps", "40")
    with page.expect_response("**/api/sequences/train") as started:
        page.click("#seq-train-start")
    folder = runs.runs_dir() / started.value.json()["job"]["folder"]  # the shared server's runs folder
    try:
        page.wait_for_selector("#seq-train-samples li canvas")
        page.wait_for_function("() => document.querySelector('#seq-train-status').textContent"
                               ".startsWith('Done')")
        status = page.inner_text("#seq-train-status")
        assert "40 steps" in status and "FLOPs" in status
        chart = page.locator("[data-chart='sequences-loss']")
        assert float(chart.get_attribute("data-last")) < float(chart.get_attribute("data-first"))
        assert page.locator("#seq-train-samples li").first.locator("canvas").count() == 10
        page.locator("#seq-training").screenshot(path=str(artifacts / "sequences-training-live.png"))
    finally:
        # The run was saved there, as a learner's is; a test leaves no run behind in the user's folder
        shutil.rmtree(folder, ignore_errors=True)
