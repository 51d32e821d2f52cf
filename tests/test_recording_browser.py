"""A recorded session replays with the figures of the live run it recorded, labelled "Recorded".

The shipped recording `capital-of-france` is SmolLM2 answering "What is the capital of France?" (chat,
temperature 0.7, seed 7, 12 tokens). The page first runs that request live; then the learner presses
Replay, and every figure the step events draw (timeline, text, top-10 table, the draw) shows the same:
the same tokens, ids, rows and words, and the same numbers to their last shown digit, give or take one
in that digit (the recording ran the textbook decode loop, the server its batched loop, which agree to
float32 rounding: a logit of 14.585 may show as 14.58 or 14.59).
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import wait_until

from prediction_machine import limits, recording

pytestmark = pytest.mark.browser

FIGURES = ("#timeline", "#generated-text", "#prediction-table", "#prediction-chosen", "#appended-token",
           "#prompt-tokens")


def shown(page) -> dict:
    return {selector: page.inner_text(selector) for selector in FIGURES}


NUMBER = re.compile(r"\d+(?:\.(\d+))?")


def same_figures(a: dict, b: dict) -> bool:
    """The same text with every number replaced by #, and each pair of numbers within one last digit."""
    for key in a:
        if NUMBER.sub("#", a[key]) != NUMBER.sub("#", b[key]):
            return False
        for x, y in zip(NUMBER.finditer(a[key]), NUMBER.finditer(b[key]), strict=True):
            digits = len(x.group(1) or "")  # an integer (an id, a rank) must be equal
            close = digits and abs(float(x[0]) - float(y[0])) <= 10 ** -digits + 1e-9
            if x[0] != y[0] and not close:
                return False
    return True


def test_a_recorded_generation_replays_with_the_live_figures(page, artifacts):
    rec = recording.load("capital-of-france")
    r = rec["request"]
    assert r["temperature"] == limits.TEMPERATURE  # the page's default, so only seed and length are set
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    page.fill("#prompt", r["prompt"])
    assert page.is_checked("#chat-toggle") == r["chat"]
    page.fill("#max-tokens", str(r["max_new_tokens"]))
    page.fill("#seed", str(r["seed"]))
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=180_000)
    n = r["max_new_tokens"]
    wait_until(lambda: page.inner_text("#stage-prediction-step") == f"· Step {n} of {n}",
               what="the live run's last step on every stage")
    live = shown(page)
    assert page.get_attribute("[data-replay-row='generation'] [data-recorded]", "data-recorded") == ""

    page.click("[data-replay='generation']")
    label = page.locator("[data-replay-row='generation'] [data-recorded]")
    wait_until(lambda: label.get_attribute("data-recorded") == rec["title"], what="the Recorded label")
    page.wait_for_selector("#inference .figure[data-done='1']")
    wait_until(lambda: page.inner_text("#stage-prediction-step") == f"· Step {n} of {n}",
               what="the replay's last step on every stage")
    replayed = shown(page)
    both = json.dumps({"live": live, "replayed": replayed}, ensure_ascii=False)[:3000]
    assert same_figures(live, replayed), both
    assert [replayed[k] for k in FIGURES[:2]] == [live[k] for k in FIGURES[:2]], both
    assert label.is_visible() and label.inner_text().startswith("Recorded")
    assert rec["title"] in label.inner_text() and "not live" in label.inner_text()
    page.locator("[data-replay-row='generation']").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "recording-replayed.png"))

    # Running live again takes the label away: a live figure is never shown as recorded, nor the reverse.
    page.fill("#max-tokens", "2")
    page.click("#generate")
    wait_until(lambda: label.get_attribute("data-recorded") == "", what="the label to go")
    assert not label.inner_text()
