"""The guided tours and "Skip to" lists, driven with the keyboard alone in headless Chromium.

Each section's tour is reached from the top navigation with Tab and Enter, walked stop by stop
(focus must land on each stop, and the live control it names must be highlighted), and finished;
the page remembers it after a reload. Escape ends a tour from anywhere. The skip links bring
Generate within a handful of Tabs of the top of the page.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def focused(page) -> dict:
    return page.evaluate(
        "() => { const a = document.activeElement; return { id: a.id, tag: a.tagName.toLowerCase(),"
        " text: a.textContent.trim(), action: a.dataset.tourAction || '', tour: a.dataset.tour || '',"
        " questions: a.matches('details[data-questions] > summary') ? a.parentElement.dataset.questions : ''"
        " }; }")


def tab_to(page, check, limit: int = 40) -> int:
    """Press Tab until check(focused element) holds; returns the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if check(focused(page)):
            return presses
    raise AssertionError(f"not reached in {limit} Tabs; focus is on {focused(page)}")


def open_ready_page(page):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    page.wait_for_selector("[data-ready='live']", timeout=60_000)  # backprop
    page.wait_for_selector("#attention .att-item", timeout=120_000)
    page.wait_for_selector("[data-ready='curriculum']", timeout=60_000)
    if page.locator("#sequences").count():
        page.wait_for_selector("#seq-train-start", timeout=60_000)
    if page.locator("#alignment").count():
        page.wait_for_selector("#al-question", timeout=60_000)


def walk(page, section: str, artifacts, during=None) -> int:
    """Reach the section's tour button from its top-nav link, then walk every stop with Tab/Enter."""
    page.keyboard.press("Escape")
    page.focus(f"header nav a[href='#{section}']")  # where a keyboard user starts: the section's nav link
    page.keyboard.press("Enter")
    tab_to(page, lambda f: f["tour"] == section)
    page.keyboard.press("Enter")
    panel = page.locator(f"[data-tour-panel='{section}']")
    stops = int(panel.get_attribute("data-stops"))
    assert 3 <= stops <= 7, f"{section} has {stops} stops"  # a tour read in a minute or two
    for index in range(stops):
        assert panel.get_attribute("data-stop") == str(index)
        assert focused(page)["id"] == "tour-title", f"focus did not move to stop {index + 1} of {section}"
        assert page.locator(f"#{section} .tour-target").count() == 1, (
            f"stop {index + 1} of {section} highlights nothing"
        )
        assert "appears once" not in panel.inner_text()
        if index == 1:
            page.screenshot(path=str(artifacts / f"tour-{section}.png"))
        if during:
            during(index)
        tab_to(page, lambda f: f["action"] == "next", limit=4)
        page.keyboard.press("Enter")
    assert panel.count() == 0, "the tour did not close after its last stop"
    # A finished tour ends at its section's questions (lib/questions.js), opened; without any, at its button.
    if page.locator(f"details[data-questions='{section}']").count():
        assert focused(page)["questions"] == section, "focus did not move to the section's questions"
        assert page.locator(f"details[data-questions='{section}']").evaluate("(d) => d.open")
    else:
        assert focused(page)["tour"] == section, "focus did not come back to the tour button"
    assert page.locator(f"#{section} .tour-target").count() == 0
    return stops


def test_every_tour_walks_with_the_keyboard_alone(page, artifacts):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_ready_page(page)
    page.fill("#max-tokens", "3")  # a short answer: the inference tour presses Generate

    def use_generate(index):
        if index != 1:
            return
        tab_to(page, lambda f: f["action"] == "use", limit=4)
        page.keyboard.press("Enter")
        assert focused(page)["id"] == "generate"
        page.keyboard.press("Enter")
        page.wait_for_selector("#inference .figure[data-done='1']", timeout=180_000)
        page.keyboard.press("Tab")  # Tab past the highlighted control comes back to the tour's Next
        assert focused(page)["action"] == "next", focused(page)
        page.keyboard.press("Shift+Tab")

    def use_layer(index):
        if index != 2:
            return
        tab_to(page, lambda f: f["action"] == "use", limit=4)
        page.keyboard.press("Enter")
        assert focused(page)["id"] == "att-layer"
        page.keyboard.press("Tab")  # out of the highlighted control: back to the tour's Next
        assert focused(page)["action"] == "next", focused(page)
        page.keyboard.press("Shift+Tab")

    helpers = {"inference": use_generate, "attention": use_layer}
    sections = page.eval_on_selector_all("[data-tour]", "els => els.map(e => e.dataset.tour)")
    assert {"backprop", "attention", "curriculum", "inference"} <= set(sections)
    for optional in ("sequences", "alignment"):  # sections checked once they are on the page
        assert (optional in sections) == bool(page.locator(f"section#{optional}").count()), optional
    walked = {}
    for section in sections:
        walked[section] = walk(page, section, artifacts, helpers.get(section))
    print("stops per tour:", walked)

    # Remembered per browser: after a reload every tour offers itself "again".
    page.reload()
    page.wait_for_selector("[data-tour='inference']")
    labels = page.eval_on_selector_all("[data-tour]", "els => els.map(e => e.textContent)")
    assert all(label == "Take the tour again" for label in labels), labels
    assert not errors, errors


def test_escape_ends_a_tour_and_progress_is_remembered(page, artifacts):
    open_ready_page(page)
    page.set_viewport_size({"width": 390, "height": 844})  # and the panel fits a phone
    page.focus("[data-tour='attention']")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Next: stop 2
    assert page.get_attribute("[data-tour-panel='attention']", "data-stop") == "1"
    box = page.locator(".tour-panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(artifacts / "tour-phone.png"))
    page.keyboard.press("Escape")
    assert page.locator(".tour-panel").count() == 0
    assert focused(page)["tour"] == "attention"
    # A fresh page offers a half-walked tour where it stopped.
    page.evaluate(
        "() => localStorage.setItem('prediction-machine:tour:curriculum', JSON.stringify({stop: 2}))"
    )
    page.reload()
    page.wait_for_selector("[data-tour='curriculum']")
    assert page.inner_text("[data-tour='curriculum']") == "Continue the tour (stop 3 of 7)"
    assert page.inner_text("[data-tour='attention']") == "Take the tour again"


def test_skip_links_bring_generate_within_a_few_tabs(page):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    page.wait_for_selector("#generate")
    # Without the skip links: every focusable element before Generate in document order.
    before = page.evaluate(
        "() => { const all = [...document.querySelectorAll("
        "'a[href], button, input, select, textarea, summary, [tabindex]')]"
        ".filter(e => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length);"
        " return all.indexOf(document.getElementById('generate')); }"
    )
    presses = 1
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to the live model"
    page.keyboard.press("Enter")
    presses += tab_to(page, lambda f: f["text"] == "Generate" and f["tag"] == "a")
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "generate"
    print(f"Tabs to reach Generate: {presses} with the skip links, {before + 1} without")
    assert presses <= 4
    assert before + 1 > 20  # the list is worth having
    # Every skip link of every section lands on a visible element of its own section.
    for link in page.locator(".section-guide .skip-list a").all():
        link.focus()
        page.keyboard.press("Enter")
        section = link.evaluate("a => a.closest('section').id")
        where = page.evaluate(
            "() => { const a = document.activeElement;"
            " return [a.closest('section')?.id, a.getClientRects().length]; }"
        )
        assert where[0] == section and where[1] > 0, (link.inner_text(), where)
