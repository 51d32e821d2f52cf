"""The whole page at phone width (390 × 844): no figure scrolls sideways, no control under 24 × 24 px.

The page is filled in first (one generation, the attention and playground figures drawn), since
figures are widest once they hold real tokens. The checks live in tests/phone_checks.py so that
each section's own tests can call them on their section.
"""

from __future__ import annotations

import pytest
from phone_checks import PHONE, sideways_scrollers, small_controls
from test_accessibility_browser import prepare

pytestmark = pytest.mark.browser


def test_no_sideways_scrolling_and_no_small_controls_at_390px(page, artifacts):
    page.set_viewport_size(PHONE)
    prepare(page)
    page.screenshot(path=str(artifacts / "phone-page.png"), full_page=True)
    sideways = sideways_scrollers(page)
    small = small_controls(page)
    print(f"at 390 px: {len(sideways)} sideways scrollers, {len(small)} controls under 24×24 px")
    assert not sideways, "\n".join(sideways)
    assert not small, "\n".join(small)


def test_the_checks_find_what_they_look_for(page):
    """The helpers are not vacuous: a wide table inside a figure and a 13 px checkbox are caught."""
    page.set_viewport_size(PHONE)
    page.goto("/")
    page.wait_for_selector(
        "#bp-playground .bp-canvas, #bp-playground canvas", timeout=60_000
    )  # mounted: nothing will re-render the probe away
    page.evaluate(
        "() => { const f = document.querySelector('#backprop [data-mount]');"
        " const box = document.createElement('div'); box.id = 'probe'; box.style.overflowX = 'auto';"
        " const wide = document.createElement('div'); wide.style.width = '900px'; wide.textContent = 'wide';"
        " const tick = document.createElement('input'); tick.type = 'checkbox';"
        " tick.style.width = '13px'; tick.style.height = '13px'; tick.style.minHeight = '0';"
        " box.append(wide, tick); f.append(box); }"
    )
    assert any("#probe" in s and "scrolls sideways" in s for s in sideways_scrollers(page, "#backprop"))
    small = small_controls(page, "#backprop")
    assert any("input" in s and "13×" in s for s in small), small
