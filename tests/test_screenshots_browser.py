"""Every section of the page, filled in, saved at desktop and phone width for a person to look at.

The screenshots land in test-artifacts/ as screenshot-<width>-<section>.png. The test checks that
each one is a real, full-section picture (as tall as the section, and not blank), so a section
that failed to render does not pass as a tiny image; looking at them is still a person's job.
"""

from __future__ import annotations

import pytest
from test_accessibility_browser import prepare
from test_export_browser import decode_png

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_every_section_at_both_widths(page, artifacts, width, height):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": width, "height": height})
    prepare(page)
    sections = page.eval_on_selector_all("main > section[id]", "els => els.map(e => e.id)")
    assert {"intro", "backprop", "attention", "curriculum", "inference"} <= set(sections)
    for section in sections:
        locator = page.locator(f"main > section#{section}")
        box = locator.bounding_box()
        path = artifacts / f"screenshot-{width}-{section}.png"
        # CSS animations off, and a long wait: on a loaded machine a section can take a while to settle.
        data = locator.screenshot(path=str(path), animations="disabled", timeout=90_000)
        shot_w, shot_h, rows = decode_png(data, unfilter=False)
        assert abs(shot_h - round(box["height"])) <= 2, (
            f"{section}: {shot_h}px shot of a {box['height']:.0f}px section"
        )
        # A blank picture filters to runs of zeros; a drawn one to many different bytes.
        assert shot_w <= width and len({b for row in rows[::25] for b in row[::13]}) > 40, (
            f"{section} looks blank"
        )
    page.screenshot(path=str(artifacts / f"screenshot-{width}-top.png"))
    if width == 1280:  # the README's picture (docs/screenshot.png is copied from it): a sampled answer
        page.set_viewport_size({"width": 1000, "height": 1150})
        page.fill("#slider-temperature", "0.7")
        page.fill("#max-tokens", "12")
        page.click("#generate")
        page.wait_for_selector("#inference .figure[data-done='1']", timeout=180_000)
        page.evaluate("() => document.getElementById('stage-sampling').scrollIntoView({behavior: 'instant'})")
        page.screenshot(path=str(artifacts / "screenshot-readme.png"))
    assert not errors, errors
