"""The playground as a newcomer meets it, in headless Chromium: the spiral, divergence, the neurons' pictures.

Checks that at learning rate 10 on the spiral a message names the learning rate
and suggests a smaller one; each hidden neuron's picture of its output over the plane changes as it
trains; the hovered neuron stands out; a shared link opens the same playground; the one-neuron graph
is tabbed in reading order. Screenshots: test-artifacts/backprop-*.png (look at them).
"""

from __future__ import annotations

import pytest
from conftest import wait_for_page
from test_backprop_browser import plane

pytestmark = pytest.mark.browser


def pictures(page) -> list[str]:
    return page.eval_on_selector_all(
        "#bp-playground .bp-unit-map", "els => els.map(e => e.getAttribute('href'))"
    )


def test_spiral_at_learning_rate_10_warns_and_neuron_pictures_change(page, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/#bp-playground")
    wait_for_page(page, lambda p: plane(p, "step") == "0")
    page.select_option("#bp-dataset", "spiral")
    # two layers of 8: 16 pictures
    wait_for_page(page, lambda p: plane(p, "step") == "0" and len(pictures(p)) == 16)
    before = pictures(page)
    assert len(set(before)) > 1  # the neurons differ from one another from the start

    # A sensible rate first: the pictures change as it trains, and no warning shows.
    page.locator("#bp-playground").get_by_role("button", name="Play").click()
    wait_for_page(page, lambda p: int(plane(p, "step")) >= 60, timeout=40)
    page.locator("#bp-playground").get_by_role("button", name="Pause").click()
    page.wait_for_timeout(500)
    after = pictures(page)
    assert len(after) == 16
    changed = sum(a != b for a, b in zip(before, after, strict=True))
    assert changed >= 12, f"only {changed} of 16 neuron pictures changed"
    assert page.locator("#bp-playground .bp-warning").is_hidden()

    # The hovered neuron stands out: a thick outline, and every edge not its own fades.
    unit = page.locator("#bp-playground .bp-unit.hidden-unit").nth(2)
    unit.hover()
    assert "active" in unit.get_attribute("class")
    width = unit.locator(".bp-neuron").evaluate("e => getComputedStyle(e).strokeWidth")
    assert float(width.rstrip("px")) >= 4
    faded = page.eval_on_selector_all(
        "#bp-playground .bp-edge",
        "els => els.map(e => [e.classList.contains('lit'), Number(getComputedStyle(e).opacity)])",
    )
    assert any(lit for lit, _ in faded) and all((o == 1) if lit else (o < 0.2) for lit, o in faded)
    page.locator("#bp-playground").screenshot(path=str(artifacts / "backprop-playground-spiral-1280.png"))
    page.mouse.move(0, 0)
    blue_means_one_thing(page)

    # Learning rate 10: the loss swings far above where it started, and the page says why.
    page.select_option("#bp-lr", "10")
    page.wait_for_timeout(300)
    page.locator("#bp-playground").get_by_role("button", name="Play").click()
    warning = page.locator("#bp-playground .bp-warning")
    warning.wait_for(state="visible", timeout=40000)
    text = warning.text_content()
    assert "learning rate 10 is too large" in text and "smaller one, such as 1" in text, text
    page.locator("#bp-playground").get_by_role("button", name="Pause").click()
    page.locator("#bp-playground").screenshot(path=str(artifacts / "backprop-playground-diverging.png"))
    # The address bar now holds this view.
    assert "dataset=spiral" in page.url and "lr=10" in page.url
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#bp-playground .bp-network-key").scroll_into_view_if_needed()
    page.locator("#bp-playground").screenshot(path=str(artifacts / "backprop-playground-390.png"))


BLUE, ORANGE = "rgb(0, 114, 178)", "rgb(230, 159, 0)"  # class 0 and class 1 (--blue, --orange)


def blue_means_one_thing(page) -> None:
    """Blue and orange are the classes (and a neuron's low and high output); weights and the train loss
    have colours of their own, and the network's key names each one."""
    seen = page.evaluate("""() => {
      const root = document.querySelector('#bp-playground');
      const style = (sel) => getComputedStyle(root.querySelector(sel));
      const key = root.querySelector('.bp-legend-item[data-series="train_loss"] canvas');
      const [r, g, b] = key.getContext('2d').getImageData(14, 5, 1, 1).data;
      const neg = style('.bp-network-key .bp-weight.neg');
      return {pos: style('.bp-network-key .bp-weight.pos').stroke, neg: neg.stroke, dash: neg.strokeDasharray,
              train: `rgb(${r}, ${g}, ${b})`, edges: [...root.querySelectorAll('.bp-network .bp-weight')]
                .map((e) => getComputedStyle(e).stroke)};
    }""")
    assert len({BLUE, ORANGE, seen["pos"], seen["neg"], seen["train"]}) == 5, seen
    assert seen["dash"] not in ("", "none")  # a negative weight is told apart without colour too
    assert set(seen["edges"]) == {seen["pos"], seen["neg"]}  # the key's colours are the diagram's
    key = page.locator("#bp-playground .bp-network-key").inner_text()
    assert all(words in key for words in ("positive weight", "negative weight", "blue low, orange high")), key


def test_shared_link_opens_the_same_playground(page):
    # Set up a view by hand: the address bar follows, with the session's initial weights.
    page.goto("/#bp-playground")
    wait_for_page(page, lambda p: plane(p, "step") == "0")
    # opening the page writes nothing: a link to another section stays intact
    assert "dataset=" not in page.url
    session = "() => document.querySelector('#backprop [data-session]')?.dataset.session || null"
    for sel, value in (("#bp-dataset", "xor"), ("#bp-layers", "3"), ("#bp-width", "4"), ("#bp-act", "relu")):
        before = page.evaluate(session)
        page.select_option(sel, value)
        # each of these builds a new session: wait for it, or the link could carry the previous one's seed
        wait_for_page(
            page,
            lambda p, before=before: p.evaluate(session) not in (None, before) and plane(p, "step") == "0",
        )
    page.select_option("#bp-lr", "0.03")
    wait_for_page(page, lambda p: "seed=" in p.url and "layers=3" in p.url and "lr=0.03" in p.url)
    wait_for_page(page, lambda p: len(pictures(p)) == 12)  # three layers of 4
    link = page.url
    loss = page.locator('[data-stat="train-loss"]').get_attribute("data-value")
    shown = pictures(page)

    page.goto("about:blank")
    page.goto(link)
    wait_for_page(page, lambda p: p.evaluate(session) and plane(p, "step") == "0" and len(pictures(p)) == 12)
    for sel, value in (
        ("#bp-dataset", "xor"),
        ("#bp-layers", "3"),
        ("#bp-width", "4"),
        ("#bp-act", "relu"),
        ("#bp-lr", "0.03"),
    ):
        assert page.input_value(sel) == value, sel
    # The same initial weights: the same starting loss to the last digit, the same neuron pictures.
    assert page.locator('[data-stat="train-loss"]').get_attribute("data-value") == loss
    assert pictures(page) == shown
    # The diagram is one Tab stop; arrow keys walk it in reading order (right: next layer, down: next unit).
    assert page.locator('#bp-playground .bp-unit[tabindex="0"]').count() == 1
    page.locator('#bp-playground .bp-unit[data-unit="0:0"]').focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.unit") == "1:1"
    assert "neuron 2 of layer 1" in page.locator("#bp-playground .bp-info").text_content()
    assert page.locator('#bp-playground .bp-unit[tabindex="0"]').get_attribute("data-unit") == "1:1"
    # A link is untrusted: an unknown value falls back to the default instead of breaking the figure.
    page.goto("about:blank")
    page.goto("/#backprop?dataset=nope&width=999")
    wait_for_page(page, lambda p: plane(p, "step") == "0")
    assert page.input_value("#bp-dataset") == "moons" and page.input_value("#bp-width") == "8"


def test_neuron_graph_reads_clearly_and_tabs_in_reading_order(page, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/#backprop")
    page.wait_for_selector('#bp-neuron [data-node="L"]')
    names = page.locator("#bp-neuron .bp-name").all_text_contents()
    assert "e = y − target" in names and "L = e²" in names and "y = tanh(z)" in names
    assert not any(n.endswith(" -") or "**" in n for n in names), names
    order = []
    page.locator('#bp-neuron [data-node="x1"]').focus()
    for _ in range(13):
        order.append(page.evaluate("document.activeElement.dataset.node"))
        page.keyboard.press("Tab")
    assert order == ["x1", "w1", "x2", "w2", "x1·w1", "x2·w2", "s", "b", "z", "y", "target", "e", "L"], order
    page.locator("#bp-neuron").screenshot(path=str(artifacts / "backprop-neuron-1280.png"))
    # On a phone the graph runs top to bottom, fits the width, and Tab still follows the reading order.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    box = page.locator("#bp-neuron .bp-graph").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    order = []
    page.locator('#bp-neuron [data-node="x1"]').focus()
    for _ in range(4):
        order.append(page.evaluate("document.activeElement.dataset.node"))
        page.keyboard.press("Tab")
    assert order == ["x1", "w1", "x2", "w2"], order
    page.get_by_role("button", name="Forward").click()
    page.locator("#bp-neuron").screenshot(path=str(artifacts / "backprop-neuron-390.png"))
