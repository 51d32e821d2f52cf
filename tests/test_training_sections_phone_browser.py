"""The three training sections (backprop, attention, curriculum) on a phone and a desktop.

At 390 × 844 no element inside these sections scrolls sideways or is cut off at the screen's edge,
and every control is at least 24 × 24 px (WCAG 2.2 target size). At both widths axe-core finds no
serious or critical WCAG 2.2 A/AA violation inside the section (the whole page:
test_accessibility_browser.py). Each section is saved at 1280 × 900 and 390 × 844:
test-artifacts/section-<name>-<width>.png (look at them).
"""

from __future__ import annotations

import pytest
from conftest import wait_for_page
from test_attention_browser import READY as ATTENTION_READY
from test_backprop_browser import plane

pytestmark = pytest.mark.browser

# What a learner can click or tab to. Links inside running text are exempt from the target size rule.
CONTROLS = "button, select, input:not([type=hidden]), textarea, summary, [tabindex]:not([tabindex='-1'])"

PROBLEMS = """([root, controls]) => {
  const section = document.querySelector(root);
  const out = { sideways: [], cut: [], small: [], checked: 0, controls: 0 };
  const classes = (e) => e.className && e.className.baseVal === undefined  // an SVG's className is no string
    ? '.' + String(e.className).split(' ').join('.') : '';
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + classes(e);
  const W = document.documentElement.clientWidth;
  for (const e of section.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height) continue;  // not shown (a closed <details>, hidden)
    out.checked += 1;
    const style = getComputedStyle(e);
    if (['auto', 'scroll'].includes(style.overflowX) && e.scrollWidth > e.clientWidth + 1) {
      out.sideways.push(name(e));
    }
    if ((r.right > W + 1 || r.left < -1) && style.position !== 'absolute') {
      out.cut.push(name(e) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
    }
  }
  for (const e of section.querySelectorAll(controls)) {
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(e).visibility === 'hidden') continue;
    out.controls += 1;
    if (r.width < 24 || r.height < 24) {
      out.small.push(name(e) + ' ' + r.width.toFixed(1) + 'x' + r.height.toFixed(1));
    }
  }
  return out;
}"""


def open_section(page, name: str) -> None:
    page.goto(f"/#{name}")
    if name == "backprop":
        wait_for_page(page, lambda p: plane(p, "step") == "0")
        page.wait_for_selector('#bp-neuron [data-node="L"]')
        page.wait_for_selector("#bp-playground .bp-unit-map")
    elif name == "attention":
        page.wait_for_selector(ATTENTION_READY, timeout=120_000)
    else:
        page.wait_for_selector("#curriculum [data-ready='curriculum']")
        page.wait_for_selector("#cur-scale table.scale", timeout=120_000)
        page.wait_for_selector("#cur-compare .compare .sides", timeout=120_000)


TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_serious(page, name: str) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = (
        Axe()
        .run(
            page,
            context={"include": [[f"#{name}"]]},
            options={"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]},
        )
        .response["violations"]
    )
    return [
        f"{v['id']} ({len(v['nodes'])}): {[n['target'] for n in v['nodes'][:5]]}"
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]


@pytest.mark.parametrize("name", ["backprop", "attention", "curriculum"])
def test_section_fits_a_phone_and_its_controls_are_big_enough(page, artifacts, name):
    page.set_default_timeout(120_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    open_section(page, name)
    page.locator(f"#{name}").screenshot(path=str(artifacts / f"section-{name}-1280.png"))
    desktop = axe_serious(page, name)
    page.set_viewport_size({"width": 390, "height": 844})
    open_section(page, name)  # a fresh load: the narrow layouts are chosen when a figure mounts
    page.wait_for_timeout(300)
    found = page.evaluate(PROBLEMS, [f"#{name}", CONTROLS])
    print(name, {k: v if isinstance(v, int) else len(v) for k, v in found.items()})
    page.locator(f"#{name}").screenshot(path=str(artifacts / f"section-{name}-390.png"))
    phone = axe_serious(page, name)
    assert not desktop and not phone, f"axe, 1280 px: {desktop}; 390 px: {phone}"
    assert found["checked"] > 50 and found["controls"] >= 8, found  # the check saw the figures, drawn
    assert not found["sideways"], f"scrolls sideways at 390 px: {found['sideways']}"
    assert not found["cut"], f"cut off at 390 px: {found['cut'][:10]}"
    assert not found["small"], f"controls under 24 × 24 px: {found['small']}"
