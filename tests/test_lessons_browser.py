"""The lesson "attention" (docs/lessons/attention.md), walked step by step on the page: every step a
teacher asks the class to take works, and shows what the plan says the students will see.

1. `/#attention` opens on the default sentence, "it" selected, its weights adding up to 100%, on a head
   listed under "Heads worth a look (measured)".
2. The "...too wide." example leaves the weights of "it" as they were, and masks the words after it.
3. In the token view a previous-token head (found from the explorer's own weights) puts each token's
   largest weight on the token before it; a square of "All heads at once" selects its head; the address
   bar's link opens that head on another page (what "Show everyone this" sends).
4. "Where do these weights come from?" opens its worked row.
5. The guided tour ends at the two questions, answered right.
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


def test_the_attention_lesson_works_step_by_step(page, browser, base_url, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
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
    page.click("[data-tour='attention']")
    while page.locator("[data-tour-panel='attention']").count():
        page.click("[data-tour-panel='attention'] [data-tour-action='next']")
    wait_for_page(page, "document.querySelector(\"details[data-questions='attention']\").open")
    most = max((c for c in page.evaluate(CHIPS) if not c["future"]), key=lambda c: c["w"])
    assert answer(ask(page, "attention", "looks_most"), most["label"])[0] == "right"
    assert answer(ask(page, "attention", "previous_head"), (best[0], best[1]))[0] == "right"
    page.screenshot(path=str(artifacts / "lesson-attention.png"))
