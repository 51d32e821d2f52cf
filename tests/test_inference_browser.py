"""The inference walkthrough in headless Chromium, used the way a learner would."""

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.browser
PROMPT = "What is the capital of France?"


def wait_until(check, timeout=60.0):
    """Poll from Python: the page's CSP forbids the eval that string predicates would need."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def cli_greedy(prompt: str, max_new: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "prediction_machine", "generate", prompt, "--temperature", "0",
         "--max-new-tokens", str(max_new), "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(done.stdout)


def test_generate_fills_every_stage_with_real_values(page, artifacts):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#prompt", PROMPT)
    page.fill("#max-tokens", "16")
    wait_until(lambda: page.inner_text("#token-count") == "7")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=180_000)

    # 1. tokenization: the user's 7 tokens, and the template's control tokens.
    assert page.locator("#prompt-tokens .token").count() == 7
    assert page.locator("#chat-tokens .token.special").count() >= 5
    # 2. embedding: a heatmap and a projection with points.
    assert page.locator("#embedding-heatmap").count() == 1
    assert page.locator("#embedding-projection circle.prompt-point").count() > 7
    page.hover("#embedding-heatmap")
    assert "dimension" in page.inner_text("#embedding-readout")
    # 3. transformer: one logit-lens row per layer, thumbnails per layer.
    assert page.locator("#logit-lens tbody tr").count() == 30
    assert page.locator("#attention-thumbs canvas").count() == 30
    # 4-5. the last step's distribution and draw.
    assert page.locator("#prediction-table tbody tr").count() == 10
    assert "Temperature 0" in page.inner_text("#draw-text")

    # 6. the streamed tokens are exactly the CLI's greedy tokens.
    ids = [int(x) for x in page.locator("#timeline .step-chip").evaluate_all("els => els.map(e => e.dataset.id)")]
    reference = cli_greedy(PROMPT, 16)
    assert ids == [s["id"] for s in reference["steps"]]
    assert page.inner_text("#generated-text") == reference["text"]
    assert "Paris" in reference["text"]
    page.locator("#inference").screenshot(path=str(artifacts / "inference-generated.png"))

    # Clicking a past step shows its own distribution.
    page.click("#timeline .step-chip[data-index='0']")
    assert "Step 1" in page.inner_text("#stage-prediction-body .caption")
    assert not errors, errors


def test_temperature_slider_reshapes_the_distribution(page, artifacts):
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#prompt", "Write one word that describes the sea.")
    page.fill("#max-tokens", "1")
    page.click("#step")
    page.wait_for_selector("#timeline .step-chip")
    page.wait_for_selector("#sampling-table")

    def probs():
        wait_until(lambda: page.get_attribute("#inference .figure", "data-running") != "1")
        return page.locator("#sampling-table .sample-prob").all_inner_texts()

    def set_slider(selector, value):
        page.eval_on_selector(selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)

    set_slider("#slider-temperature", "0.5")
    wait_until(lambda: "next draw" in page.inner_text("#stage-sampling-body .caption"))
    page.wait_for_timeout(800)
    cold = probs()
    set_slider("#slider-temperature", "1.8")
    wait_until(lambda: probs() != cold)
    hot = probs()
    assert cold != hot
    assert float(hot[0].rstrip("%")) < float(cold[0].rstrip("%"))  # hotter = flatter: the top token loses mass
    assert page.inner_text("#slider-temperature-value") == "1.80"
    assert "u = " in page.inner_text("#draw-text")  # the seeded draw is shown
    page.locator("#stage-sampling").screenshot(path=str(artifacts / "inference-sampling.png"))


def test_page_is_usable_on_a_phone(page, artifacts):
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375 + 1, f"page scrolls sideways on a phone: {width}px"
    page.screenshot(path=str(artifacts / "inference-phone.png"))


def test_model_text_is_shown_as_text(page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#prompt", "<img src=x onerror=alert(1)>")
    shown = lambda: "".join(page.locator("#prompt-tokens .token-text").all_text_contents())  # noqa: E731
    wait_until(lambda: shown() == "<img␣src=x␣onerror=alert(1)>")  # verbatim, spaces made visible
    assert page.locator("#inference img").count() == 0
    assert not dialogs
