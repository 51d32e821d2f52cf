"""The example notebooks run headless, offline, on this venv's own kernel (nbclient), and their figures draw.

Both notebooks run once per module (they load SmolLM2-135M, as a reader's would). Each figure's output is
checked as HTML (one self-contained output: the page's code inline, nothing fetched) and as text (the
fallback where HTML is not shown); then the tour's outputs are opened in Chromium, where each must draw
with the page's own figure code, and the attention explorer must answer a hover.
"""

from __future__ import annotations

import html as markup
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, wait_for_page
from nbclient import NotebookClient

import prediction_machine as pm
from prediction_machine import notebook as nb

EXAMPLES = ROOT / "examples"
# notebook -> the figures it shows, in order
FIGURES = {
    "a-tour-of-one-prediction.ipynb": ["trace", "lens", "prediction", "generation"],
    "attention-and-experiments.ipynb": ["attention", "ablation"],
}


@pytest.fixture(scope="module")
def executed() -> dict[str, nbformat.NotebookNode]:
    out = {}
    for name in FIGURES:
        nb = nbformat.read(EXAMPLES / name, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(EXAMPLES)}}).execute()
        sizes = ", ".join(f"{len(o['text/html']) / 1e3:.0f} kB" for o in figure_outputs(nb))
        print(f"{name}: ran in {time.perf_counter() - t0:.1f} s; its figures' outputs: {sizes}")
        out[name] = nb
    return out


def figure_outputs(nb) -> list[dict]:
    """Every rich output of the notebook, in order: its HTML and its text."""
    return [o["data"] for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
            if o.get("output_type") == "execute_result" and "text/html" in o.get("data", {})]


def test_each_figure_is_one_self_contained_output_with_a_text_fallback(executed):
    for name, kinds in FIGURES.items():
        outputs = figure_outputs(executed[name])
        assert [re.search(r'data-kind="(\w+)"', o["text/html"])[1] for o in outputs] == kinds, name
        for o in outputs:
            html, text = o["text/html"], o["text/plain"]
            assert '<script type="module">' in html and "modules[\"host.js\"].show(" in html
            assert html.lower().count("</script") == 1  # nothing inside ends the script early
            # nothing from a server or a CDN: no src or href to fetch, no import of a URL
            assert not re.search(r"""\b(src|href)=["']?(https?:)?//""", html)
            assert not re.search(r"""^\s*import\b""", html, re.M)
            assert "figures/stages.js" in html  # the page's own figure modules, inline
            # the text fallback sits inside, shown until the script replaces it
            assert html.count("<pre>") >= 1 and markup.escape(text.splitlines()[0]) in html


def test_the_text_fallbacks_hold_the_computed_numbers(executed):
    tour = {re.search(r'data-kind="(\w+)"', o["text/html"])[1]: o["text/plain"]
            for o in figure_outputs(executed["a-tour-of-one-prediction.ipynb"])}
    assert "576 numbers per token" in tour["trace"]  # SmolLM2-135M's d_model
    assert len(re.findall(r"^\s+\d+\s+'", tour["lens"], re.M)) == 30  # one line per layer
    assert "<- drawn" in tour["prediction"] and "u = " in tour["prediction"]  # the seeded draw
    steps = re.findall(r"^\s+(\d+)\s+'", tour["generation"], re.M)
    assert steps == [str(i) for i in range(1, len(steps) + 1)] and 1 <= len(steps) <= 12
    att, ablation = (o["text/plain"] for o in figure_outputs(executed["attention-and-experiments.ipynb"]))
    assert "30 layers x 9 heads" in att
    assert re.search(r"^Switched off \(zero\): head 3\.5\. .*: \d+\.\d% before, \d+\.\d% after", ablation)
    printed = [o.get("text", "") for cell in executed["attention-and-experiments.ipynb"].cells
               if cell.cell_type == "code" for o in cell.outputs if o.get("output_type") == "stream"]
    assert "(30, 9, 13, 13)" in "".join(printed)  # pm.trace's attention tensor for the sentence


@pytest.mark.browser
def test_the_figures_draw_in_chromium(executed, page, artifacts: Path, tmp_path: Path):
    outputs = figure_outputs(executed["a-tour-of-one-prediction.ipynb"]) + figure_outputs(
        executed["attention-and-experiments.ipynb"])
    html = "".join(f'<div class="cell">{o["text/html"]}</div>' for o in outputs)
    doc = tmp_path / "notebook.html"
    doc.write_text(f'<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body>{html}</body>'
                   "</html>")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(doc.as_uri())
    drawn = "() => [...document.querySelectorAll('.prediction-machine-figure')].map((f) => f.dataset.drawn)"
    wait_for_page(page, f"({drawn})().every(Boolean)", timeout=60)
    assert page.evaluate(drawn) == ["trace", "lens", "prediction", "generation", "attention", "ablation"]
    # Each figure drew real marks: the embedding canvas and projection, the lens line, the draw bar,
    # the timeline's buttons, the attention map, the before/after bars.
    counts = page.evaluate("""() => [...document.querySelectorAll('.prediction-machine-figure')].map((f) => {
      const r = f.shadowRoot;
      return { canvas: r.querySelectorAll('canvas').length, svg: r.querySelectorAll('svg').length,
        steps: r.querySelectorAll('.step-chip').length, rows: r.querySelectorAll('tbody tr').length };
    })""")
    assert counts[0]["canvas"] >= 1 and counts[0]["svg"] >= 1
    assert counts[1]["svg"] >= 1 and counts[2]["rows"] == 20  # two tables of 10 rows
    assert counts[3]["steps"] >= 1 and counts[4]["canvas"] >= 1 and counts[5]["svg"] >= 1
    # The attention explorer answers a hover from the numbers inside its output.
    att = page.locator('.prediction-machine-figure[data-kind="attention"]')
    readout = att.locator(".att-readout")
    before = readout.inner_text()
    att.locator(".att-sentence > *").nth(4).hover()
    wait_for_page(page, lambda p: readout.inner_text() != before, timeout=20)
    # Another step on the timeline redraws that step's table.
    gen = page.locator('.prediction-machine-figure[data-kind="generation"]')
    gen.locator(".step-chip").first.click()
    assert gen.locator(".step-chip").first.get_attribute("aria-pressed") == "true"
    assert errors == []
    page.mouse.move(0, 0)  # no glossary note left open by the hover
    for width, name in ((1100, "desktop"), (390, "phone")):
        if name == "phone":  # drawn again at a phone's width, as a notebook on a phone would draw it
            page.set_viewport_size({"width": width, "height": 900})
            page.reload()
            wait_for_page(page, f"({drawn})().every(Boolean)", timeout=60)
        for kind in ("attention", "generation", "ablation"):
            figure = page.locator(f'.prediction-machine-figure[data-kind="{kind}"]')
            figure.screenshot(path=str(artifacts / f"notebook-{kind}-{name}.png"))
    assert errors == []


def test_a_figure_refuses_bad_input_as_the_page_does():
    """What the page gets as a 422 is a ValueError in a notebook, with the message naming the limit."""
    lm = pm.load("shakespeare-chat")  # a tiny shipped model: 4 layers of 4 heads
    with pytest.raises(ValueError, match=r"^layer: is 9; this model's layers are 0\.\.3"):
        nb.ablation(lm, "ROMEO:", "head", layer=9, head=0, raw=True)
    with pytest.raises(ValueError, match=r"^text: is \d+ tokens long; the attention explorer takes at most"):
        nb.attention(lm, "to be or not to be " * 60)
    with pytest.raises(ValueError, match="max_new_tokens"):
        nb.generation(lm, "ROMEO:", max_new_tokens=10**6)
    fig = nb.generation(lm, "ROMEO:", pm.SamplingParams(temperature=0), max_new_tokens=3)
    assert [s["index"] for s in fig.data["steps"]] == list(range(len(fig.data["steps"])))
    assert fig.data["steps"][0]["draw"]["u"] is None  # greedy: no random number


def test_model_text_cannot_end_an_outputs_script():
    lm = pm.load("shakespeare-chat")
    hostile = "</script><script>alert(1)</script><!-- x"
    html = nb.trace(lm, hostile)._repr_html_()
    assert html.lower().count("</script") == 1 and "<script>alert" not in html and "<!--" not in html
