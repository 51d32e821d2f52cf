"""The inference walkthrough in headless Chromium, used the way a learner would."""

import json
import subprocess
import sys

import pytest
from conftest import generate_on_page, wait_until

from tests.phone_checks import PHONE, sideways_scrollers, small_controls

pytestmark = pytest.mark.browser
PROMPT = "What is the capital of France?"


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
    # The page starts at the server's default temperature (GET /api/settings), one value everywhere.
    from prediction_machine import limits

    assert float(page.input_value("#slider-temperature")) == limits.TEMPERATURE
    assert float(page.get_attribute("#slider-temperature", "max")) == limits.MAX_TEMPERATURE
    greedy = "el => { el.value = 0; el.dispatchEvent(new Event('input')); }"
    page.eval_on_selector("#slider-temperature", greedy)
    page.fill("#prompt", PROMPT)
    page.fill("#max-tokens", "16")
    wait_until(lambda: page.inner_text("#token-count") == "7")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=180_000)
    steps = page.locator("#timeline .step-chip").count()
    tags = lambda: [page.inner_text(f"#stage-{s}-step") for s in ("embedding", "transformer", "prediction")]  # noqa: E731
    wait_until(lambda: set(tags()) == {f"· Step {steps} of {steps}"})  # stages 2-3 traced the newest step too

    # 1. tokenization: the user's 7 tokens, and the template's control tokens.
    assert page.locator("#prompt-tokens .token").count() == 7
    assert page.locator("#chat-tokens .token.special").count() >= 5
    # 2. embedding: a heatmap with a labelled row per token, and a projection with points.
    # By default only the learner's tokens and the generated ones; the template's behind a toggle.
    assert page.locator("#embedding-heatmap").count() == 1
    labels = page.locator(".heatmap-labels .row-label")
    assert labels.count() == 7 + steps - 1  # the 7 tokens typed and those generated before the last step
    assert labels.first.inner_text() == "What" and page.locator(".row-label.template").count() == 0
    assert page.locator("#embedding-projection circle.prompt-point.template").count() == 0
    assert page.locator("#embedding-projection circle.prompt-point").count() >= 7
    page.hover("#embedding-heatmap")
    assert "dimension" in page.inner_text("#embedding-readout")
    assert not overlapping_labels(page), overlapping_labels(page)
    page.check("#embedding-template-toggle")
    assert page.locator(".row-label.template").count() == 30  # the chat template's tokens, now shown
    assert page.locator("#embedding-projection circle.prompt-point.template").count() > 0
    page.uncheck("#embedding-template-toggle")
    # 3. transformer: the chosen token's line over the layers, one logit-lens row per layer, thumbnails.
    assert page.locator("#lens-line circle.point").count() == 30
    assert "After layer 29" in page.inner_text("#lens-readout")
    assert "In the first 10 layers the top guess is mostly" in page.inner_text("#lens-early")
    assert page.locator("#logit-lens tbody tr").count() == 30
    assert page.locator("#attention-thumbs canvas").count() == 30
    # 4-5. the last step's distribution and draw.
    assert page.locator("#prediction-table tbody tr").count() == 10
    assert "Temperature 0" in page.inner_text("#draw-text")

    # 6. the streamed tokens are exactly the CLI's greedy tokens.
    ids = [
        int(x) for x in page.locator("#timeline .step-chip").evaluate_all("els => els.map(e => e.dataset.id)")
    ]
    reference = cli_greedy(PROMPT, 16)
    assert ids == [s["id"] for s in reference["steps"]]
    assert page.inner_text("#generated-text") == reference["text"]
    assert "Paris" in reference["text"]
    page.locator("#inference").screenshot(path=str(artifacts / "inference-generated.png"))

    # Clicking a past step shows its own distribution.
    page.click("#timeline .step-chip[data-index='0']")
    assert "Step 1" in page.inner_text("#stage-prediction-body .caption")
    assert not errors, errors


def overlapping_labels(page) -> list[str]:
    """Pairs of labels in the embedding picture whose boxes overlap by more than a pixel."""
    boxes = page.locator("#embedding-projection text").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return [e.textContent, r.left, r.top, r.right, r.bottom]; })"
    )
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if min(a[3], b[3]) - max(a[1], b[1]) > 1 and min(a[4], b[4]) - max(a[2], b[2]) > 1:
                out.append(f"{a[0]!r} and {b[0]!r}")
    return out


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
        return page.locator("#preview-table .sample-prob").all_inner_texts()

    def set_slider(selector, value):
        page.eval_on_selector(
            selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value
        )

    taken = page.inner_text("#draw-text")  # the step taken, at the server's default temperature
    set_slider("#slider-temperature", "0.5")
    wait_until(lambda: page.locator("#sampling-next .caption").count() == 1)
    assert "next draw" in page.inner_text("#sampling-next .caption")
    page.wait_for_timeout(800)
    cold = probs()
    set_slider("#slider-temperature", "1.8")
    wait_until(lambda: probs() != cold)
    hot = probs()
    assert cold != hot
    # hotter = flatter: the top token loses mass
    assert float(hot[0].rstrip("%")) < float(cold[0].rstrip("%"))
    assert page.inner_text("#slider-temperature-value") == "1.80"
    assert "u = " in page.inner_text("#preview-draw-text")  # the seeded draw is shown
    assert page.inner_text("#draw-text") == taken  # the step taken keeps its own record
    page.locator("#stage-sampling").screenshot(path=str(artifacts / "inference-sampling.png"))
    # singular and plural: one token is "1 token"
    assert page.inner_text("#loop-stats").startswith("1 token. ")
    assert "(1 token)." in page.inner_text("#status")
    page.fill("#prompt", "Hello")
    wait_until(lambda: page.inner_text("#token-count") == "1")
    assert "1 token in your text." in page.inner_text("#stage-tokenizer-body")


def test_page_is_usable_on_a_phone(browser, base_url, artifacts):
    """At 390 px nothing in the inference figures scrolls sideways and every control is 24 x 24 px or more."""
    context = browser.new_context(base_url=base_url, viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    generate_on_page(page)
    assert page.get_attribute("#inference .examples-box", "open") is None  # the examples wait behind one line
    page.set_viewport_size(PHONE)  # set_viewport_size: a rotation would re-flow the same way
    assert not sideways_scrollers(page, "#inference"), sideways_scrollers(page, "#inference")
    assert not small_controls(page, "#inference"), small_controls(page, "#inference")
    page.locator("#inference").screenshot(path=str(artifacts / "inference-390x844.png"))
    context.close()


def test_desktop_screenshot(page, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    generate_on_page(page)
    assert page.get_attribute("#inference .examples-box", "open") == ""
    assert not sideways_scrollers(page, "#inference")
    page.locator("#inference").screenshot(path=str(artifacts / "inference-1280x900.png"))


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
