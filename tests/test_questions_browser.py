"""The questions that end each section's tour, answered by a student on one page.

Each answer is checked against what the page shows (lib/question-checks.js), so the test reads the right
answer from the page's own figures first: the inference walkthrough's step 3 (from the recorded
generation, replayed), the attention explorer's weights, the loss curve of the recorded pre-training
run, the backpropagation playground's losses and accuracy, the digit's newest pixel's odds and an
ablation's result. A wrong answer gets the hint; progress is kept in localStorage; a finished tour opens
the questions. Axe and phone width hold on the questions and the replay rows. The questions of alignment,
"Inside the stages" and "Why it makes things up" are answered in those sections' own modules
(test_alignment_browser, test_inside_browser, test_makes_up_browser), on the pages that already hold
the runs they are checked against.
"""

from __future__ import annotations

import json

import pytest
from conftest import wait_for_page
from phone_checks import PHONE, sideways_scrollers, small_controls
from test_accessibility_browser import TAGS, describe

NEW_VIEWS = "details[data-questions], [data-replay-row]"

pytestmark = pytest.mark.browser


def new_serious(page) -> list[dict]:
    """axe's serious and critical violations inside the questions and the replay rows."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, context={"include": [[s.strip()] for s in NEW_VIEWS.split(",")]},
                      options={"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]})
    return [v for v in found.response["violations"] if v.get("impact") in ("serious", "critical")]


def ask(page, section: str, qid: str):
    """The question's form, its box opened."""
    box = page.locator(f"details[data-questions='{section}']")
    if not box.evaluate("(d) => d.open"):
        box.locator("summary").click()
    return box.locator(f"form[data-question='{qid}']")


def answer(form, value) -> tuple[str, str]:
    """Type or choose `value` (a radio's value: yes, no or one of a question's choices), press Check;
    returns the verdict and the sentence shown."""
    radio = form.locator(f"input[type='radio'][value='{value}']")
    if radio.count():
        radio.check()
    elif isinstance(value, tuple):
        form.locator("input[id$='-layer']").fill(str(value[0]))
        form.locator("input[id$='-head']").fill(str(value[1]))
    else:
        form.locator("input").fill(str(value))
    before = form.locator(".question-result").inner_text()
    form.locator("button[type='submit']").click()
    result = form.locator(".question-result")
    wait_for_page(form.page, lambda _: result.get_attribute("data-verdict") and result.inner_text() != before)
    return result.get_attribute("data-verdict"), result.inner_text()


def test_a_student_answers_each_sections_questions(page, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    page.evaluate("localStorage.clear()")

    # ------------------------------------------------------------ inference: the recorded generation
    page.wait_for_selector("[data-replay='generation']", timeout=120_000)
    form = ask(page, "inference", "top_token")
    assert answer(form, "Paris")[0] in ("wait", "wrong")  # nothing generated yet, or not step 3's top
    page.click("[data-replay='generation']")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=120_000)
    step3 = page.evaluate("""() => {
        const s = document.querySelector('#inference [data-mount]').live.steps[2];
        const top = s.prediction.rows.reduce((a, b) => (b.model_prob > a.model_prob ? b : a));
        return { top: top.token.text, drawn: s.token.text, same: s.id === top.id }; }""")
    # the page's own table at step 3 shows that token on top
    page.locator("#timeline .step-chip").nth(2).click()
    wait_for_page(page, "document.querySelector('#prediction-table tbody tr')")
    verdict, said = answer(form, "zzqx")
    assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, step3["top"].strip())
    assert verdict == "right" and step3["top"].strip() in said, said
    verdict, said = answer(ask(page, "inference", "drew_top"), "yes" if step3["same"] else "no")
    assert verdict == "right" and step3["drawn"].strip() in said

    # ------------------------------------------------------------ attention: the explorer's weights
    page.wait_for_selector("#attention [data-mount][data-ready='1']", timeout=120_000)
    chips = page.evaluate("""() => [...document.querySelectorAll('#attention .att-item')].map((c) =>
        ({ label: c.querySelector('.att-text').textContent, w: Number(c.dataset.weight),
           future: c.classList.contains('future') }))""")
    seen = [c for c in chips if not c["future"]]
    most = max(seen, key=lambda c: c["w"])
    least = min(seen, key=lambda c: c["w"])
    form = ask(page, "attention", "looks_most")
    if least["label"] != most["label"]:
        verdict, said = answer(form, least["label"])
        assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, most["label"])
    assert verdict == "right" and most["label"] in said
    # every head's share of weight on the previous token, measured here from the explorer's own data
    shares = page.evaluate("""() => { const s = document.querySelector('#attention [data-mount]').live;
        const out = []; const d = s.data;
        d.layers.forEach((layer, i) => d.heads.forEach((head, j) => {
          const m = d.attention.maps[i][j]; let sum = 0;
          for (let q = 1; q < m.length; q++) sum += m[q][q - 1];
          out.push([layer, head, sum / (m.length - 1)]); }));
        return out; }""")
    best = max(shares, key=lambda x: x[2])
    worst = min(shares, key=lambda x: x[2])
    assert best[2] >= 0.4, f"no previous-token head in this sentence: {best}"
    form = ask(page, "attention", "previous_head")
    verdict, said = answer(form, (worst[0], worst[1]))
    assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, (best[0], best[1]))
    assert verdict == "right" and f"layer {best[0]}, head {best[1]}" in said

    # ------------------------------------------------------------ pre-training: the recorded run
    page.click("[data-replay='pretraining']")
    wait_for_page(page, "document.querySelector(\"[data-replay-row='pretraining'] [data-recorded]\")"
                        ".dataset.recorded")
    chart = page.locator("[data-chart='pretrain-loss']")
    first, last = float(chart.get_attribute("data-first")), float(chart.get_attribute("data-last"))
    form = ask(page, "curriculum", "loss_down")
    verdict, said = answer(form, "no" if last < first else "yes")
    assert verdict == "wrong" and "Hint:" in said
    assert answer(form, "yes" if last < first else "no")[0] == "right"
    form = ask(page, "curriculum", "last_loss")
    assert answer(form, round(last + 1, 1))[0] == "wrong"
    verdict, said = answer(form, round(last, 1))
    assert verdict == "right" and f"{last:.2f}" in said

    # ------------------------------------------------------------ backpropagation: the playground's numbers
    page.wait_for_selector("#backprop [data-stat='train-acc']:not([data-value=''])[data-value]",
                           timeout=60_000)
    value = lambda key: float(page.get_attribute(f"#backprop [data-stat='{key}']", "data-value"))  # noqa: E731
    train, test, accuracy = value("train-loss"), value("test-loss"), value("train-acc")
    form = ask(page, "backprop", "test_loss_higher")
    verdict, said = answer(form, "no" if test > train else "yes")
    assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, "yes" if test > train else "no")
    assert verdict == "right" and f"{test:.4f}" in said
    assert answer(ask(page, "backprop", "train_accuracy"), round(accuracy * 100))[0] == "right"

    # ------------------------------------------------------------ sequences: the newest pixel's odds
    page.click("#digit-step")
    page.wait_for_selector("#digit-dist .dist-bar")
    probs = [float(p) for p in page.eval_on_selector_all("#digit-dist rect.dist-bar", "(r) => r.map((b) =>"
                                                         " b.dataset.prob)")]
    taken = page.eval_on_selector_all("#digit-dist rect.dist-bar", "(r) => r.findIndex((b) =>"
                                      " b.classList.contains('chosen'))")
    likeliest = probs.index(max(probs))
    form = ask(page, "sequences", "likeliest_grey")
    verdict, said = answer(form, (likeliest + 1) % 17)
    assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, likeliest)
    assert verdict == "right" and f"grey level {likeliest}" in said
    took = "yes" if taken == likeliest else "no"
    assert answer(ask(page, "sequences", "took_likeliest"), took)[0] == "right"

    # ------------------------------------------------------------ experiments: one part switched off
    form = ask(page, "experiments", "ablation_lower")
    assert answer(form, "yes")[0] == "wait"  # nothing switched off yet
    page.click("#xp-ablate-run")
    wait_for_page(page, "document.querySelector('#xp-ablation').dataset.state === 'done'")
    before, after = (float(page.get_attribute("#xp-ablation", f"data-{k}")) for k in ("before", "after"))
    verdict, said = answer(form, "no" if after < before else "yes")
    assert verdict == "wrong" and "Hint:" in said
    assert answer(form, "yes" if after < before else "no")[0] == "right"
    assert answer(ask(page, "experiments", "ablation_points"), round((after - before) * 100))[0] == "right"

    # ------------------------------------------------------------ kept, summed up, reachable by a tour
    kept = page.evaluate("() => JSON.parse(localStorage.getItem('prediction-machine:questions:attention'))")
    assert kept["right"] == {"looks_most": True, "previous_head": True}
    assert "2 of 2" in page.inner_text("details[data-questions='curriculum'] summary")
    page.locator("details[data-questions='attention'] summary").click()  # folded again
    page.click("[data-tour='attention']")
    for _ in range(20):
        if page.locator("[data-tour-panel='attention']").count() == 0:
            break
        page.click("[data-tour-panel='attention'] [data-tour-action='next']")
    wait_for_page(page, "document.querySelector(\"details[data-questions='attention']\").open")
    assert page.evaluate("() => document.activeElement.matches(\"[data-questions='attention'] summary\")")
    page.screenshot(path=str(artifacts / "questions-desktop.png"))

    # ------------------------------------------------------------ axe and phone width on the new views
    bad = new_serious(page)
    assert not bad, describe(bad)
    page.set_viewport_size(PHONE)
    page.evaluate("() => document.querySelectorAll('[data-questions]').forEach((d) => { d.open = true; })")
    assert not sideways_scrollers(page, NEW_VIEWS), sideways_scrollers(page, NEW_VIEWS)
    assert not small_controls(page, NEW_VIEWS), small_controls(page, NEW_VIEWS)
    assert not new_serious(page), describe(new_serious(page))
    page.locator("details[data-questions='attention']").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "questions-phone.png"))
    print(json.dumps({"step3": step3, "previous_head": best, "loss": [first, last]}))
