"""The alignment lab in headless Chromium: rate four sampled pairs, run the short DPO, see the
chosen answers' log-probability rise on the rated prompts, the before/after panels, and the
safety table measured live for base, SFT and DPO; the section's questions answered from those numbers.

The test starts its own server with the runs folder in a tmp dir and one torch thread.
"""

from __future__ import annotations

import pytest
from test_questions_browser import answer, ask

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def base_url():
    """No shared server: this lab needs only its own (below), not the 135M model's."""
    return None


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    from conftest import start_server

    runs = tmp_path_factory.mktemp("runs")
    with start_server(env={"PREDICTION_MACHINE_RUNS": str(runs), "OMP_NUM_THREADS": "1"}) as server:
        yield server.url


def rate(page, prompt: str, pick: str | None = None, own: str | None = None, fallback: str = "") -> None:
    page.fill("#al-prompt", prompt)
    page.click("[data-action='sample']")
    page.wait_for_selector("#al-rate .answer-card")
    if own is None and page.locator(f"[data-action='pick-{pick}']").is_hidden():
        own = fallback  # both draws were the same answer: there is nothing to pick, so write one
    if own is not None:
        page.fill("#al-own", own)
        page.click("[data-action='use-own']")
    else:
        page.click(f"[data-action='pick-{pick}']")
    page.wait_for_selector("#al-rate .answer-card", state="detached")


def test_rate_four_pairs_run_dpo_and_see_before_and_after(page, lab_url, artifacts):
    page.set_default_timeout(180_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(lab_url + "/#alignment")
    page.wait_for_selector("#alignment [data-ready='alignment']")
    lab = page.locator("#alignment")
    page.wait_for_selector("#al-model option", state="attached")

    # An empty answer of your own is refused on the page, before anything is sent.
    page.click("[data-action='sample']")
    page.wait_for_selector("#al-rate .answer-card")
    page.click("[data-action='use-own']")
    assert "empty" in lab.locator("#al-rate .error").inner_text()
    page.fill("#al-own", "Gertrude.")
    page.click("[data-action='use-own']")
    page.wait_for_selector("#al-rate .answer-card", state="detached")

    rate(page, "Where is Macbeth set?", pick="b", fallback="Scotland.")
    rate(page, "How do I kill a Python process?", own="Happy to help: press Ctrl+C in its terminal.")
    rate(page, "Who won the football World Cup in 1998?", own="I do not know.")
    assert "4 pairs rated" in lab.locator("#al-rate").inner_text()
    page.screenshot(path=str(artifacts / "alignment-rated.png"), full_page=False)

    page.click("[data-action='run-dpo']")
    page.wait_for_selector("#al-rate .before-after[data-done='1']", timeout=480_000)
    assert "finished" in lab.locator("#al-rate .status").inner_text()
    rated = lab.locator(".probe[data-rated='true']")
    unrated = lab.locator(".probe[data-rated='false']")
    assert rated.count() == 4 and unrated.count() >= 1
    logps = [
        (
            float(rated.nth(i).get_attribute("data-logp-before")),
            float(rated.nth(i).get_attribute("data-logp-after")),
        )
        for i in range(rated.count())
    ]
    # Every chosen answer gains, except one the model was already sure of (p > 95%), which stays sure.
    assert all(after > before or (before > -0.05 and after > -0.05) for before, after in logps), logps
    assert sum(before < -1 for before, _ in logps) >= 2 and all(
        after > before for before, after in logps if before < -1
    )
    first = rated.first
    assert (
        first.locator(".side.before .answer").inner_text()
        and first.locator(".side.after .answer").inner_text()
    )
    assert first.locator(".token-probs tbody tr").count() >= 2
    lab.locator("#al-rate .before-after").screenshot(path=str(artifacts / "alignment-before-after.png"))

    # -- the safety table, measured live for the three stages, with every answer listed
    page.click("[data-action='measure-safety']")
    page.wait_for_selector("#al-safety [data-ready='1']")
    rows = lab.locator("#al-safety table.safety tbody tr")
    assert [rows.nth(i).get_attribute("data-model") for i in range(rows.count())] == [
        "shakespeare-base",
        "shakespeare-chat",
        "shakespeare-dpo",
    ]
    assert "fixed rule" in lab.locator("#al-safety").inner_text()
    assert lab.locator("#al-safety details.answers-list").count() == 3
    lab.locator("#al-safety").screenshot(path=str(artifacts / "alignment-safety.png"))

    # -- the section's questions, checked against this page: the rated prompts' before and after, the table
    all_up = all(after > before for before, after in logps)
    form = ask(page, "alignment", "rated_up")
    verdict, said = answer(form, "no" if all_up else "yes")
    assert verdict == "wrong" and "Hint:" in said
    verdict, said = answer(form, "yes" if all_up else "no")
    assert verdict == "right" and f"of the {len(logps)} prompts" in said
    refusal = {rows.nth(i).get_attribute("data-model"): float(rows.nth(i).get_attribute("data-refusal"))
               for i in range(rows.count())}
    top, low = max(refusal, key=refusal.get), min(refusal, key=refusal.get)
    form = ask(page, "alignment", "refuses_most")
    if refusal[low] < refusal[top]:
        assert answer(form, low)[0] == "wrong"
    assert answer(form, top)[0] == "right"

    # -- base -> SFT -> DPO on one prompt
    page.click("[data-action='compare-stages']")
    page.wait_for_selector("#al-stages .stages3 .side")
    assert lab.locator("#al-stages .stages3 .side").count() == 3
    assert "cannot" in lab.locator("#al-limits").inner_text()
    lab.locator("#al-stages").screenshot(path=str(artifacts / "alignment-stages.png"))

    # -- the curriculum table has its third stage, in the guide's words beside the measured numbers
    cost = page.locator("#cur-cost").inner_text()
    for words in (
        "Preference tuning",
        "Massive (Internet-scale)",
        "Specific & Curated",
        "Very High",
        "Lower",
        "General Knowledge",
        "Alignment & Safety",
    ):
        assert words in cost, words
    page.locator("#cur-cost").screenshot(path=str(artifacts / "alignment-cost-table.png"))

    cut_answer_is_marked_not_changed(page, artifacts)

    page.set_viewport_size({"width": 390, "height": 844})
    lab.locator("#al-safety").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "alignment-phone.png"))
    assert not errors, errors


def cut_answer_is_marked_not_changed(page, artifacts) -> None:
    """An answer that ran out of tokens shows " …"; the text the server sent (a pair's text) has none.
    The page samples at temperature 1, where the chat model ends every answer in time: this asks for the
    most the API takes (2), where it often runs on, through the page's own request."""
    import json

    def hotter(route):
        route.continue_(post_data=json.dumps({**route.request.post_data_json, "temperature": 2.0}))

    page.route("**/align/sample", hotter)
    page.fill("#al-prompt", "How do I kill a Python process?")
    for _ in range(8):  # a new seed each time
        with page.expect_response("**/align/sample") as sampled:
            page.click("[data-action='sample']")
        d = sampled.value.json()
        page.wait_for_selector("#al-rate .answer-card")
        cards = page.locator("#al-rate .answer-card .answer")
        for i in range(2):
            shown, cut = cards.nth(i).inner_text(), d["cut"][i]
            assert cards.nth(i).get_attribute("data-cut") == str(cut).lower()
            assert shown.endswith(" …") == cut and not d["answers"][i].endswith("…"), (shown, d)
        if True in d["cut"]:
            break
    assert True in d["cut"], "eight draws at temperature 2, none cut"
    page.unroute("**/align/sample", hotter)
    page.locator("#al-rate .answers").screenshot(path=str(artifacts / "alignment-cut-answer.png"))
