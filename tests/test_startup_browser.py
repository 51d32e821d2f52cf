"""While the model loads, the page shows a note and carries on by itself (web/static/js/lib/api.js).

The browser sees exactly what a just-started server sends (503, Retry-After, X-Model-State:
loading), replayed by Playwright for the first requests; then the real server answers.
"""

from __future__ import annotations

LOADING = {"status": 503, "content_type": "application/json",
           "headers": {"Retry-After": "1", "X-Model-State": "loading"},
           "body": '{"error": "the model is still loading; try again in 2 seconds"}'}


def test_the_page_waits_for_a_loading_model_with_a_note(page, artifacts):
    loading = {"on": True, "refused": 0}

    def answer(route):  # "loading" until the test says the model is ready
        if loading["on"]:
            loading["refused"] += 1
            route.fulfill(**LOADING)
        else:
            route.continue_()

    page.route("**/api/tokenize", answer)
    for width, height in ((1280, 900), (390, 844)):
        loading.update(on=True, refused=0)
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/")
        note = page.locator(".model-loading-note")
        note.wait_for(state="visible", timeout=10_000)
        assert "model is loading" in note.inner_text()
        alerts = [t for t in page.locator("[role=alert]").all_inner_texts() if t.strip()]
        assert alerts == [], alerts  # a loading model is not an error
        page.screenshot(path=str(artifacts / f"startup-loading-{width}.png"))
        loading["on"] = False  # the model is ready: the next retry gets the real answer
        page.wait_for_selector("#prompt-tokens .token", timeout=30_000)
        note.wait_for(state="detached", timeout=5_000)
        assert loading["refused"] >= 1 and not [
            t for t in page.locator("[role=alert]").all_inner_texts() if t.strip()
        ]
