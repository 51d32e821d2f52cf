"""The three lessons (docs/lessons/), walked step by step on one student's page: every step a teacher
asks the class to take works, and shows what the plan says the students will see. One page serves the
module's three walks, in order.

"Attention" (attention.md):
1. `/#attention` opens on the default sentence, "it" selected, its weights adding up to 100%, on a head
   listed under "Heads worth a look (measured)".
2. The "...too wide." example leaves the weights of "it" as they were, and masks the words after it.
3. In the token view a previous-token head (found from the explorer's own weights) puts each token's
   largest weight on the token before it; a square of "All heads at once" selects its head; the address
   bar's link opens that head on another page (what "Show everyone this" sends).
4. "Where do these weights come from?" opens its worked row.
5. The guided tour ends at the two questions, answered right.

"A model is a distribution" (distribution.md), the student's side; the teacher's rounds (steps 1 and 3)
are walked on the teacher's page by test_rounds_browser:
2. The round's prompt, no chat template, one token, Generate with two seeds: stage 4's table is the same,
   the draw is marked in it; in step 4 the first seed draws the same first token again.
3. The temperature slider sharpens (0.3) and flattens (1.5) the next draw's bars.
4. Three tokens, then the tour ends at the two questions, answered from the page's own step 3.
5. The address bar's link holds the run at temperature 1.5, ready for "Show everyone this".

"How a model is made" (made.md); the short DPO and the safety table (step 4) are walked by
test_alignment_browser, which trains its own run:
1. The recorded pre-training run draws its loss curve, schedule and samples; the circuits slider moves.
2. The curriculum's tour ends at its questions, answered from the loss curve.
3. Compare shows the shipped base and chat models side by side.
4. Sample two answers, A is better: one pair rated.
5. The scale table is measured; "Ask all three" answers with base, SFT and DPO.
"""

from __future__ import annotations

import pytest
from conftest import wait_for_page
from test_questions_browser import answer, ask

pytestmark = pytest.mark.browser

READY = "#attention [data-mount][data-ready='1']"
CHIPS = """() => [...document.querySelectorAll('#attention .att-item')].map((c) =>
  ({ label: c.querySelector('.att-text').textContent, w: Number(c.dataset.weight),
     query: c.classList.contains('query'), future: c.classList.contains('future') }))"""


@pytest.fixture(scope="module")
def guide(browser, base_url):
    """The module's one page; each lesson goes on where the last left it."""
    page = browser.new_page(base_url=base_url, viewport={"width": 1280, "height": 900})
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, errors
    page.close()


def opened(page) -> None:
    """A walk run on its own finds the page not yet opened."""
    if not page.url.startswith("http"):
        page.goto("/")


def finish_tour(page, section: str) -> None:
    page.click(f"[data-tour='{section}']")
    while page.locator(f"[data-tour-panel='{section}']").count():
        page.click(f"[data-tour-panel='{section}'] [data-tour-action='next']")
    wait_for_page(page, f"document.querySelector(\"details[data-questions='{section}']\").open")


def test_the_attention_lesson_works_step_by_step(guide, browser, artifacts):
    page, errors = guide
    # ------------------------------------------------ 1. where does "it" look?
    page.goto("/#attention")
    page.wait_for_selector(READY, timeout=120_000)
    page.wait_for_selector("#attention .att-show")
    assert page.input_value("#att-text") == ""  # the default sentence, not a typed one
    chips = page.evaluate(CHIPS)
    query = next(c for c in chips if c["query"])
    assert query["label"] == "it"
    assert sum(c["w"] for c in chips if not c["future"]) == pytest.approx(1, abs=1e-3)
    layer, head = page.get_attribute("#attention [data-mount]", "data-layer"), page.get_attribute(
        "#attention [data-mount]", "data-head")
    assert f"Show layer {layer}, head {head}" in page.inner_text("#attention .att-prominent")
    top = max((c for c in chips if not c["future"]), key=lambda c: c["w"])
    assert top["label"] in page.inner_text("#attention .att-readout")

    # ------------------------------------------------ 2. looking backwards only
    page.locator("#attention .att-example", has_text="too wide").click()
    wait_for_page(page, "document.querySelector('#attention .att-example[aria-pressed=\"true\"]')"
                        ".textContent.includes('too wide')")
    page.wait_for_selector(READY)
    wide = page.evaluate(CHIPS)
    assert next(c for c in wide if c["query"])["label"] == "it"
    before_it = [c["w"] for c in chips if not c["future"]]
    assert [c["w"] for c in wide if not c["future"]] == pytest.approx(before_it, abs=1e-4)
    later = [c for c in wide if c["future"]]
    assert [c["label"] for c in later] == ["was", "too", "wide", "."]
    assert all(w.inner_text().endswith("masked") for w in page.locator("#attention .att-item.future").all())

    # ------------------------------------------------ 3. heads with habits
    page.check("#att-view-token")
    page.wait_for_selector(READY)
    best = page.evaluate("""() => { const d = document.querySelector('#attention [data-mount]').live.data;
        let best = null;
        d.layers.forEach((layer, i) => d.heads.forEach((head, j) => { const m = d.attention.maps[i][j];
          let sum = 0; for (let q = 1; q < m.length; q++) sum += m[q][q - 1];
          const share = sum / (m.length - 1); if (!best || share > best[2]) best = [layer, head, share]; }));
        return best; }""")
    assert best[2] >= 0.4
    page.click(f"#attention .att-cell[data-layer='{best[0]}'][data-head='{best[1]}']")  # All heads at once
    wait_for_page(page, f"document.querySelector('#att-layer').value === '{best[0]}'"
                        f" && document.querySelector('#att-head').value === '{best[1]}'")
    page.wait_for_selector(READY)
    tokens = page.evaluate(CHIPS)
    q = next(i for i, c in enumerate(tokens) if c["query"])
    seen = [c["w"] for c in tokens[: q + 1]]
    assert seen.index(max(seen)) == q - 1, "the previous-token head looks one token back"
    link = page.url
    assert "layer=" in link and "head=" in link
    other = browser.new_page()
    other.goto(link)
    other.wait_for_selector(READY, timeout=120_000)
    assert (other.input_value("#att-layer"), other.input_value("#att-head")) == (str(best[0]), str(best[1]))
    other.close()

    # ------------------------------------------------ 4. where the numbers come from
    page.locator("#attention summary[data-tour-stop='att-deep']").click()
    wait_for_page(page, "document.querySelector('#attention .att-deep-body').textContent.length > 40")

    # ------------------------------------------------ 5. the tour ends at the questions
    finish_tour(page, "attention")
    most = max((c for c in page.evaluate(CHIPS) if not c["future"]), key=lambda c: c["w"])
    assert answer(ask(page, "attention", "looks_most"), most["label"])[0] == "right"
    assert answer(ask(page, "attention", "previous_head"), (best[0], best[1]))[0] == "right"
    page.screenshot(path=str(artifacts / "lesson-attention.png"))
    assert not errors, errors


def set_slider(page, selector: str, value: float) -> None:
    page.eval_on_selector(selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }",
                          str(value))


def test_the_distribution_lesson_works_on_a_students_page(guide, artifacts):
    page, errors = guide
    opened(page)
    page.locator("#inference").scroll_into_view_if_needed()
    page.wait_for_selector("#prompt-tokens .token")
    # ------------------------------------------------ 2. the same prompt on your own page
    page.fill("#prompt", "The cat sat on the")
    page.uncheck("#chat-toggle")
    page.fill("#max-tokens", "1")

    def generate(seed: int) -> tuple[list, str]:
        page.fill("#seed", str(seed))
        page.click("#generate")  # resets the figure's done mark at once
        page.wait_for_selector("#inference .figure[data-done='1']")
        table = page.eval_on_selector_all("#prediction-table tbody tr", "rs => rs.map((r) =>"
                                          " [r.dataset.id, r.querySelector('.prob').textContent])")
        return table, page.get_attribute("#timeline .step-chip", "data-id")

    (table, drawn), (again, _) = generate(1), generate(2)
    assert again == table, "stage 4 is the same on every press"
    chosen = page.locator("#prediction-table tr.chosen")  # the draw is marked, if it is among the rows
    drew = page.get_attribute("#timeline .step-chip", "data-id")
    assert chosen.count() == 0 or chosen.get_attribute("data-id") == drew

    # ------------------------------------------------ 3. settings reshape the draws
    def next_draw() -> list[str]:
        return page.locator("#preview-table .sample-prob").all_inner_texts()

    start = page.input_value("#slider-temperature")
    set_slider(page, "#slider-temperature", 0.3)
    page.wait_for_selector("#preview-table .sample-prob")
    wait_for_page(page, "document.querySelector('#slider-temperature-value').textContent === '0.30'")
    page.wait_for_timeout(500)
    cold = next_draw()
    set_slider(page, "#slider-temperature", 1.5)
    wait_for_page(page, lambda _: next_draw() != cold)
    hot = next_draw()
    assert float(hot[0].rstrip("%")) < float(cold[0].rstrip("%")), (cold, hot)

    # ------------------------------------------------ 4. questions, on a run of three tokens
    # (seed 1 at the starting temperature again: the same seed draws the same first token as in step 2)
    set_slider(page, "#slider-temperature", start)
    page.fill("#max-tokens", "3")
    assert generate(1)[1] == drawn, "the same seed draws the same token"
    step3 = page.evaluate("""() => {
        const s = document.querySelector('#inference [data-mount]').live.steps[2];
        const top = s.prediction.rows.reduce((a, b) => (b.model_prob > a.model_prob ? b : a));
        return { top: top.token.text, same: s.id === top.id }; }""")
    finish_tour(page, "inference")
    assert answer(ask(page, "inference", "top_token"), step3["top"].strip())[0] == "right"
    assert answer(ask(page, "inference", "drew_top"), "yes" if step3["same"] else "no")[0] == "right"
    page.screenshot(path=str(artifacts / "lesson-distribution.png"))

    # ------------------------------------------------ 5. show everyone a high temperature
    # The address bar holds it (another page opening such a link: test_step_story_browser).
    set_slider(page, "#slider-temperature", 1.5)
    wait_for_page(page, "location.hash.includes('t=1.5')")
    link = page.url
    assert "#inference?" in link and "t=1.5" in link and "n=3" in link, link
    assert not errors, errors


def test_the_made_lesson_works_on_a_students_page(guide, artifacts):
    page, errors = guide
    opened(page)
    # ------------------------------------------------ 1. pre-training (the recorded run: the plan's fallback)
    page.click("[data-replay='pretraining']")
    wait_for_page(page, "document.querySelector(\"[data-replay-row='pretraining'] [data-recorded]\")"
                        ".dataset.recorded")
    chart = page.locator("[data-chart='pretrain-loss']")
    first, last = float(chart.get_attribute("data-first")), float(chart.get_attribute("data-last"))
    assert last < first
    assert page.locator("[data-chart='pretrain-lr'] svg").count() == 1
    assert page.locator("#cur-pretrain .samples li").count() > 0
    page.wait_for_selector("#cur-circ[data-step]")
    at_end = page.get_attribute("#cur-circ", "data-step")
    page.locator("#cur-circ-step").focus()
    page.keyboard.press("Home")  # drag through training: back to its first snapshot
    wait_for_page(page, f"document.querySelector('#cur-circ').dataset.step !== '{at_end}'")

    # ------------------------------------------------ 2. questions on the run
    finish_tour(page, "curriculum")
    assert answer(ask(page, "curriculum", "loss_down"), "yes")[0] == "right"
    assert answer(ask(page, "curriculum", "last_loss"), round(last, 1))[0] == "right"

    # ------------------------------------------------ 3. from continuing text to answering
    page.wait_for_selector("#cur-compare .compare[data-tuned] .side >> nth=1")
    sides = page.locator("#cur-compare .compare .side .answer").all_inner_texts()
    assert len(sides) == 2 and sides[0] != sides[1], sides

    # ------------------------------------------------ 4. you are the human (one pair; the run itself: above)
    page.click("#alignment [data-action='sample']")
    page.wait_for_selector("#al-rate .answer-card")
    pick = page.locator("#al-rate [data-action='pick-a']")
    if pick.is_visible():
        pick.click()
    else:  # both draws gave the same answer: the learner writes a better one
        page.fill("#al-own", "Gertrude.")
        page.click("[data-action='use-own']")
    wait_for_page(page, "document.querySelector('#al-rate table.rated tbody').children.length === 1")

    # ------------------------------------------------ 5. the cost in scale, and the three stages
    page.wait_for_selector("#cur-scale table.scale tbody tr")
    page.click("#alignment [data-action='compare-stages']")
    page.wait_for_selector("#al-stages .stages3 .side >> nth=2")
    page.screenshot(path=str(artifacts / "lesson-made.png"))
    assert not errors, errors
