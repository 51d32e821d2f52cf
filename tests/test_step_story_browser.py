"""One step, one story, in Chromium: every stage shows the step the timeline selects.

Eight tokens are stepped at temperature 0.8 with a fixed seed; then each timeline entry is
clicked, and the six stages must tell the same story as `prediction-machine generate --json`
with the same seed and settings (and as the library function that command calls).
"""

import json
import subprocess
import sys

import pytest
from conftest import wait_until

from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.inference.tokenizer import StreamDecoder

pytestmark = pytest.mark.browser
PROMPT = "Write one word that describes the sea."
SEED, TEMPERATURE, N = 42, 0.8, 8
STAGES = ["tokenizer", "embedding", "transformer", "prediction", "sampling", "generation"]


def cli_generate() -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "prediction_machine", "generate", PROMPT, "--temperature", str(TEMPERATURE),
         "--seed", str(SEED), "--max-new-tokens", str(N), "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(done.stdout)


def set_slider(page, selector, value):
    page.eval_on_selector(
        selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value
    )


def step_eight(page):
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#prompt", PROMPT)
    page.fill("#max-tokens", str(N))
    page.fill("#seed", str(SEED))
    set_slider(page, "#slider-temperature", str(TEMPERATURE))
    for k in range(1, N + 1):
        page.click("#step")
        wait_until(
            lambda k=k: (
                page.locator("#timeline .step-chip").count() == k
                and page.get_attribute("#inference .figure", "data-running") == "0"
            )
        )


def stage_tags(page):
    return [page.inner_text(f"#stage-{s}-step") for s in STAGES]


@pytest.fixture(scope="module")
def stepped(browser, base_url):
    """One page that has stepped eight tokens, read by the three tests below in their file order (the last one
    moves a slider). Stepping costs about 15 s, so it is done once."""
    page = browser.new_page(base_url=base_url, viewport={"width": 1280, "height": 720})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    step_eight(page)
    yield page, errors
    page.close()


def test_every_stage_shows_the_selected_step_and_agrees_with_the_cli(stepped, lm, artifacts):
    page, errors = stepped
    reference = cli_generate()
    ids = [s["id"] for s in reference["steps"]]
    assert len(ids) == N
    # the same library function the CLI calls, for what --json does not print: u, the slice, the cache
    prompt_ids = lm.prompt_ids(PROMPT)
    lib = list(generate(lm.decoder, prompt_ids, SamplingParams(TEMPERATURE), N, lm.stop_ids, SEED, 10))
    assert [s.id for s in lib] == ids
    decoder, texts = StreamDecoder(lm.tokenizer), []
    for i in ids:
        texts.append("" if i in lm.stop_ids else decoder.push(i))

    timeline = [
        int(x) for x in page.locator("#timeline .step-chip").evaluate_all("els => els.map(e => e.dataset.id)")
    ]
    assert timeline == ids, "stepping picked differently from one uninterrupted generate"
    for i in range(N):
        page.click(f"#timeline .step-chip[data-index='{i}']")
        tag = f"Step {i + 1} of {N}"
        wait_until(lambda tag=tag: all(tag in t for t in stage_tags(page)))
        # timeline
        assert int(page.get_attribute("#timeline .step-chip.selected", "data-id")) == ids[i]
        # 1. the tokens read: the prompt and the i tokens before this one
        assert f"reads {len(prompt_ids) + i} tokens" in page.inner_text("#step-read")
        assert page.locator("#read-generated .token").count() == i
        # 3. the logit-lens line follows the token this step chose
        assert int(page.get_attribute("#lens-line", "data-id")) == ids[i]
        # 4. the token chosen in the prediction table
        chosen = page.locator("#prediction-table tr.chosen")
        if chosen.count():
            assert int(chosen.get_attribute("data-id")) == ids[i]
        else:
            assert str(ids[i]) in page.inner_text("#prediction-chosen")
        # 5. the draw: the token, its u, and the slice u landed in
        draw = page.locator("#draw-text")
        assert int(draw.get_attribute("data-id")) == ids[i]
        u, lo, hi = (float(draw.get_attribute(f"data-{k}")) for k in ("u", "from", "to"))
        assert u == lib[i].draw.u
        assert lo == pytest.approx(lib[i].draw.cumulative_before, abs=1e-5) and lo <= u < hi
        assert f"u = {u:.4f}" in draw.inner_text()
        assert f"#{i + 1} from seed {SEED}" in page.inner_text("#stage-sampling-body .caption")
        # 6. the appended text and the KV cache
        shown = page.inner_text("#appended-text")
        assert shown == "".join(texts[: i + 1])
        assert page.inner_text("#appended-text mark") == texts[i]
        assert f"{lib[i].cached} positions held" in page.inner_text("#loop-stats")
        if i == 2:
            page.locator("#inference").screenshot(path=str(artifacts / "inference-step-3-of-8.png"))
    assert page.inner_text("#generated-text") == reference["text"]
    assert not errors, errors


def test_a_shared_link_opens_the_same_view(stepped, browser, base_url, artifacts):
    page, _ = stepped
    page.click("#timeline .step-chip[data-index='4']")
    wait_until(lambda: all("Step 5 of 8" in t for t in stage_tags(page)))
    link = page.url
    assert "#inference?" in link and "step=5" in link and "n=8" in link
    before = {
        "ids": page.locator("#timeline .step-chip").evaluate_all("els => els.map(e => e.dataset.id)"),
        "draw": page.inner_text("#draw-text"),
        "prediction": page.inner_text("#prediction-table"),
        "lens": page.get_attribute("#lens-line", "aria-label"),
    }
    other = browser.new_page(base_url=base_url)
    other.goto(link)
    wait_until(lambda: other.get_attribute("#inference .figure", "data-shared") == "1", timeout=120)
    wait_until(lambda: all("Step 5 of 8" in other.inner_text(f"#stage-{s}-step") for s in STAGES))
    assert other.input_value("#prompt") == PROMPT
    assert other.input_value("#slider-temperature") == str(TEMPERATURE)
    after = {
        "ids": other.locator("#timeline .step-chip").evaluate_all("els => els.map(e => e.dataset.id)"),
        "draw": other.inner_text("#draw-text"),
        "prediction": other.inner_text("#prediction-table"),
        "lens": other.get_attribute("#lens-line", "aria-label"),
    }
    assert after == before
    other.close()


def test_sliders_after_a_step_preview_the_next_draw_apart_from_the_record(stepped):
    page, errors = stepped
    page.click("#timeline .step-chip[data-index='7']")
    recorded = page.inner_text("#draw-text")
    assert page.locator("#preview-table").count() == 0  # nothing moved yet: only the record
    set_slider(page, "#slider-temperature", "1.5")
    page.wait_for_selector("#preview-table")
    assert "What the next draw would use (step 9)" in page.inner_text("#sampling-next .caption")
    assert "not a record" in page.inner_text("#sampling-next .caption")
    assert page.inner_text("#draw-text") == recorded  # the step taken is left as it was
    assert "Step 8 of 8" in page.inner_text("#stage-sampling-body #sampling-record .caption")
    assert not errors, errors


def test_stages_follow_the_newest_step_unless_an_older_one_is_pinned(page):
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#prompt", PROMPT)
    page.fill("#seed", str(SEED))
    set_slider(page, "#slider-temperature", str(TEMPERATURE))

    def step(k):
        page.click("#step")
        wait_until(
            lambda: (
                page.locator("#timeline .step-chip").count() == k
                and page.get_attribute("#inference .figure", "data-running") == "0"
            )
        )

    for k in (1, 2, 3):
        step(k)
    wait_until(lambda: all("Step 3 of 3" in t for t in stage_tags(page)))  # following the newest
    page.click("#timeline .step-chip[data-index='0']")  # pin step 1
    wait_until(lambda: all("Step 1 of 3" in t for t in stage_tags(page)))
    step(4)
    wait_until(lambda: all("Step 1 of 4" in t for t in stage_tags(page)))  # still pinned
    assert page.get_attribute("#timeline .step-chip.selected", "data-index") == "0"
    page.click("#timeline .step-chip[data-index='3']")  # the newest again: follow from here on
    step(5)
    wait_until(lambda: all("Step 5 of 5" in t for t in stage_tags(page)))
