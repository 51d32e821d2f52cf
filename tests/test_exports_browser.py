"""Saved figures are ready for slides: each carries its title and the step it shows, no SVG element is
larger than the figure, and figures with nothing drawn yet offer nothing to save.

Runs on the tiny stub model, so a generation takes a second.
"""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from test_export_browser import decode_png

pytestmark = pytest.mark.browser
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def stub_url(stub, tmp_path_factory):
    from conftest import start_server

    runs = tmp_path_factory.mktemp("runs")
    with start_server("--model", stub, env={"PREDICTION_MACHINE_RUNS": str(runs)}) as server:
        yield server.url


def save(page, node: str, button: str) -> tuple[str, bytes]:
    bar = page.locator(f"{node} + .figure-export")
    with page.expect_download() as info:
        bar.locator(button).click()
    return info.value.suggested_filename, open(info.value.path(), "rb").read()


def largest_element(page, markup: str) -> tuple:
    """((width, name) of the widest element, (height, name) of the tallest, figure width, figure height)
    of an SVG file, in its own units, measured by the browser that draws it."""
    other = page.context.new_page()
    other.set_content(markup)
    out = other.evaluate("""() => { const s = document.querySelector('svg'); const v = s.viewBox.baseVal;
      let w = [0, ''], h = [0, ''];
      for (const e of s.querySelectorAll('*')) { if (!e.getBBox) continue;
        const b = e.getBBox(), name = e.tagName + ' ' + (e.textContent || '').slice(0, 40);
        if (b.width > w[0]) w = [b.width, name];
        if (b.height > h[0]) h = [b.height, name]; }
      return [w, h, v.width, v.height]; }""")
    other.close()
    return tuple(out)


def test_saved_figures_carry_their_title_and_step_and_fit_their_size(page, stub_url, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(stub_url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#max-tokens", "4")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=60_000)
    step = "Step 4 of 4"
    page.locator("#stage-embedding-step", has_text=step).wait_for(timeout=30_000)
    page.wait_for_selector("#embedding-heatmap + .figure-export", timeout=10_000)

    # A canvas: the embedding heatmap, with a title band above the picture.
    name, data = save(page, "#embedding-heatmap", ".save-png")
    (artifacts / "export-embedding-heatmap.png").write_bytes(data)
    width, height, rows = decode_png(data)
    canvas = page.evaluate("(() => { const c = document.querySelector('#embedding-heatmap');"
                           " const r = c.getBoundingClientRect();"
                           " return [c.width, c.height, r.width, r.height]; })()")
    scale = max(1, 2 * canvas[2] / canvas[0])
    picture = (round(canvas[0] * scale), round(canvas[1] * max(1, 2 * canvas[3] / canvas[1])))
    assert picture[1] >= 2 * canvas[3] - 1, (picture, canvas)  # the page's shape, not a thin strip
    # the tokens' names at the left, the title above, the dimensions' axis below
    assert width >= picture[0] + 20 and height >= picture[1] + 40 + 2 * 16, (width, height, picture)
    band = rows[:40]
    assert any(len(set(row)) > 2 for row in band), "the title band is blank"
    names = [row[: 4 * (width - picture[0])] for row in rows[40:40 + picture[1]]]
    assert any(len(set(row)) > 2 for row in names), "no row names at the left"
    assert name.startswith("inference-embedding-heatmap") and "loading" not in name

    # An SVG: the embedding projection; its text holds the stage's title and step, and nothing in it
    # (the white background included) is larger than the figure.
    name, data = save(page, "#embedding-projection", ".save-svg")
    markup = data.decode()
    root = ElementTree.fromstring(markup)
    title = root.find(f"{SVG}title").text
    assert "Embedding" in title and step in title, title
    assert title in " ".join(root.itertext())  # visible on the slide, not only in the file
    widest, tallest, w, h = largest_element(page, markup)
    assert widest[0] <= w + 0.5 and tallest[0] <= h + 0.5, (widest, tallest, w, h)
    name, data = save(page, "#embedding-projection", ".save-png")
    (artifacts / "export-embedding-projection.png").write_bytes(data)
    width, height, _ = decode_png(data)
    shown = page.locator("#embedding-projection").bounding_box()
    assert height >= 2 * shown["height"] + 40 and width >= 2 * shown["width"] - 2


def test_empty_charts_offer_nothing_to_save(page, stub_url):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(stub_url + "/#curriculum")
    page.wait_for_selector("#cur-pretrain svg.chart")
    page.wait_for_selector("#bp-loss")
    page.wait_for_timeout(600)  # the export bars are added within 250 ms of a change
    empty = page.evaluate("""() => [...document.querySelectorAll('[data-empty]')].map(n => {
      const bar = n.nextElementSibling;
      return [n.id || n.getAttribute('class'), Boolean(bar && bar.classList.contains('figure-export')
        && !bar.hidden && bar.offsetParent !== null)]; })""")
    assert len(empty) >= 2 and not [name for name, shown in empty if shown], empty
    # The playground's loss chart gets its buttons once it has a step to show.
    page.locator("#bp-playground").get_by_role("button", name="Step").first.click()
    page.wait_for_selector("#bp-loss:not([data-empty]) + .figure-export:not([hidden])", timeout=30_000)


def test_the_attention_map_is_saved_with_its_head_axes_and_words(page, stub_url, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(stub_url + "/#attention")
    page.wait_for_selector("#attention [data-ready='1'] .att-mapframe + .figure-export", timeout=60_000)
    frame = page.locator("#attention .att-mapframe")
    axes = frame.locator(".att-axis").all_inner_texts()  # the page names the map's axes too
    assert "reading" in axes[0] and "being read" in axes[1], axes
    label = page.get_attribute("#attention .att-map", "aria-label")
    assert "head" in label and "loading" not in label, label  # the head it shows: in the saved title
    n = page.evaluate("document.querySelectorAll('#attention .att-sentence .att-item').length")
    name, data = save(page, "#attention .att-mapframe", ".save-png")
    (artifacts / "export-attention-map.png").write_bytes(data)
    assert name.startswith("attention-attention-map") and "loading" not in name, name
    width, height, rows = decode_png(data)
    shown = page.locator("#attention .att-map").bounding_box()
    # the words along the left and under the map, the title above and the axis titles: all in the file
    assert width >= 2 * shown["width"] + 40 and height >= 2 * shown["height"] + 40 + 40, (width, height, n)
    left = [row[: 4 * 30] for row in rows[60:-60]]
    assert any(len(set(row)) > 2 for row in left), "no words at the left"
    under = rows[-30:]
    assert any(len(set(row)) > 2 for row in under), "no axis title under the map"
