"""The curriculum lab in headless Chromium: pre-train live and stop, then fine-tune THAT run and compare.

The test starts its own server with the runs folder in a tmp dir (nothing lands in the user's
data dir) and one torch thread (tiny models train fastest that way on a busy machine).
"""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from prediction_machine.model.models import shipped_checkpoint

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab_runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def lab_server(lab_runs):
    from conftest import start_server

    with start_server(env={"PREDICTION_MACHINE_RUNS": str(lab_runs), "OMP_NUM_THREADS": "1"}) as server:
        yield server


@pytest.fixture(scope="module")
def lab_url(lab_server):
    return lab_server.url


def track_requests(page) -> dict:
    """The page's requests still unanswered, by URL (the browser opens at most 6 connections to a server)."""
    waiting: dict = {}
    page.on("request", lambda r: waiting.__setitem__(r, r.method + " " + r.url))
    for event in ("requestfinished", "requestfailed"):
        page.on(event, lambda r: waiting.pop(r, None))
    return waiting


def merge_columns(page) -> dict:
    """How the first merges stand: their number of columns, and each gap between two columns that is too
    narrow for the numbers (a column's numbers sit outside its items, in the gap before it; the list's
    own padding is what they need)."""
    return page.evaluate("""() => {
      const ol = document.querySelector('#cur-pretrain .merges');
      const room = parseFloat(getComputedStyle(ol).paddingInlineStart);
      const boxes = [...ol.children].map((li) => li.getBoundingClientRect());
      const starts = [...new Set(boxes.map((b) => Math.round(b.left)))].sort((a, b) => a - b);
      const column = (x) => boxes.filter((b) => Math.round(b.left) === x);
      const ends = starts.map((x) => Math.max(...column(x).map((b) => b.right)));
      const gaps = starts.slice(1).map((x, i) => x - ends[i]);
      return { columns: starts.length, room, tight: gaps.filter((gap) => gap < room - 1) };
    }""")


def wait_or_explain(page, selector: str, server, waiting: dict, timeout_ms: int = 180_000) -> None:
    """Wait for `selector`; if it never shows, fail with what the panel, the browser, the jobs and the
    server said."""
    try:
        page.wait_for_selector(selector, timeout=timeout_ms)
    except PlaywrightTimeout:
        panel = " | ".join(page.locator("#cur-pretrain").evaluate(
            "(p) => [p.querySelector('.status')?.textContent, p.querySelector('.stats dd')?.textContent]"))
        error = page.locator("#cur-pretrain").evaluate("(p) => p.querySelector('.error')?.textContent || ''")
        jobs = httpx.get(server.url + "/api/curriculum/jobs", timeout=30).text
        raise AssertionError(f"{selector} never showed.\nstatus | step: {panel}\nerror: {error}\n"
                             f"unanswered: {sorted(waiting.values())}\njobs: {jobs}\n"
                             f"server log (end):\n{server.output()[-3000:]}") from None


def test_pretrain_live_then_finetune_and_compare(page, lab_server, lab_url, lab_runs, artifacts):
    page.set_default_timeout(180_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    waiting = track_requests(page)
    page.goto(lab_url + "/#curriculum")
    page.wait_for_selector("#curriculum [data-ready='curriculum']")
    lab = page.locator("#curriculum")
    # Before any run exists there is nothing to resume: the saved-run row is hidden, and a stray click
    # gets a plain message, not a validation error.
    page.wait_for_selector("#cur-resume", state="attached")
    assert (
        page.locator("#cur-resume").is_hidden()
        and page.locator("[data-action='resume-pretrain']").is_hidden()
    )
    page.locator("[data-action='resume-pretrain']").dispatch_event("click")
    message = lab.locator("#cur-pretrain .error").inner_text()
    assert "no saved run to resume" in message and "pattern" not in message, message
    api = httpx.post(
        lab_url + "/api/curriculum/pretrain", json={"resume": ""}, timeout=30
    )  # the API says it plainly too
    assert api.status_code == 422 and "no saved run to resume" in api.json()["error"], api.text
    assert page.locator("#cur-ft-base option").count() == 1  # only the shipped base to start from, so far

    # -- pre-training: start, watch the curve fall and a sample appear, stop
    page.fill("#cur-steps", "200")
    page.locator("#cur-steps").dispatch_event("change")
    with page.expect_response(lambda r: r.url.endswith("/api/curriculum/pretrain")) as started:
        page.click("[data-action='start-pretrain']")
    assert started.value.ok, started.value.text()
    wait_or_explain(page, "#cur-pretrain .merges li", lab_server, waiting)
    page.wait_for_selector("#cur-pretrain .samples li")
    page.wait_for_function(
        "() => { const c = document.querySelector('[data-chart=pretrain-loss]');"
        " return c && c.dataset.last && Number(c.dataset.last) < Number(c.dataset.first) - 0.3; }"
    )
    assert lab.locator("#cur-pretrain .samples li pre").first.inner_text().startswith("Romeo:")
    assert "bytes per token" in lab.locator("#cur-pretrain .ratio").inner_text()
    assert lab.locator("#cur-pretrain .stats dd").nth(2).inner_text() != "–"  # parameter count shown
    page.locator("#cur-pretrain button", has_text="Stop").click()
    page.wait_for_function(
        "() => document.querySelector('#cur-pretrain .status').textContent.includes('stopped')"
    )
    page.locator("#cur-pretrain").screenshot(path=str(artifacts / "curriculum-pretrain.png"))

    # -- the stopped run is on disk and can be resumed from where it stopped
    page.wait_for_selector("#cur-resume option", state="attached")
    assert page.is_visible("#cur-resume")
    stopped_at = int(lab.locator("#cur-pretrain .stats dd").first.inner_text().split("/")[0])
    page.click("[data-action='resume-pretrain']")
    page.wait_for_function(
        f"() => parseInt(document.querySelector('#cur-pretrain .stats dd').textContent) > {stopped_at}"
    )
    assert lab.locator("#cur-pretrain .merges li").count() > 0  # the vocabulary came back with the run
    earlier = lab.locator("#cur-pretrain .samples .sample-step").all_inner_texts()  # and its samples
    assert earlier and int(earlier[-1].split()[-1]) <= stopped_at, earlier
    page.locator("#cur-pretrain button", has_text="Stop").click()
    page.wait_for_function(
        "() => document.querySelector('#cur-pretrain .status').textContent.includes('stopped')"
    )

    # -- fine-tuning the run just pre-trained (not the shipped base): a few steps, then the comparison
    assert (shipped_checkpoint("shakespeare-base") / "prediction-machine.json").is_file()
    assert lab.locator("#cur-finetune .mask .token.trained").count() > 0
    page.wait_for_selector("#cur-ft-base option[value^='pretrain-']", state="attached")
    mine = page.locator("#cur-ft-base option[value^='pretrain-']").first.get_attribute("value")
    page.select_option("#cur-ft-base", mine)
    page.fill("#cur-ft-steps", "4")
    page.locator("#cur-ft-steps").dispatch_event("change")
    # The shipped pair is compared on load; after fine-tuning, the page compares the new model with its base.
    page.wait_for_selector("#cur-compare .compare[data-tuned='shakespeare-chat'] .sides")
    with page.expect_response(lambda r: r.url.endswith("/api/curriculum/finetune")) as started:
        page.click("[data-action='start-finetune']")
    assert started.value.request.post_data_json["base"] == mine
    page.wait_for_selector("#cur-compare .compare[data-tuned^='finetune-'] .sides .side >> nth=1")
    assert page.get_attribute("#cur-compare .compare", "data-base") == mine
    assert lab.locator("#cur-compare .side h5").all_inner_texts() == [
        f"Base: my run {mine} (pre-trained only)",
        "Tuned (after fine-tuning)",
    ]
    assert "4 / 4" in lab.locator("#cur-finetune .stats dd").first.inner_text()
    tuned = page.get_attribute("#cur-compare .compare", "data-tuned")
    assert (
        json.loads((lab_runs / tuned / "run.json").read_text())["base"] == mine
    )  # recorded by its run id, no path
    assert lab.locator("#cur-compare .dist tbody tr").count() >= 2
    assert "probability mass" in lab.locator("#cur-compare .moved").inner_text()
    assert "tokens of Shakespeare" in lab.locator("#cur-cost").inner_text()
    page.wait_for_selector("#cur-scale table.scale")
    page.locator("#cur-finetune").screenshot(path=str(artifacts / "curriculum-finetune.png"))
    page.locator("#cur-compare").screenshot(path=str(artifacts / "curriculum-compare.png"))
    page.locator("#cur-cost").screenshot(path=str(artifacts / "curriculum-cost.png"))
    page.locator("#cur-scale").screenshot(path=str(artifacts / "curriculum-scale.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator("#curriculum").screenshot(path=str(artifacts / "curriculum-1280.png"))
    wide = merge_columns(page)
    assert wide["columns"] >= 2 and wide["tight"] == [], wide
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#cur-pretrain").screenshot(path=str(artifacts / "curriculum-phone.png"))
    narrow = merge_columns(page)
    assert narrow["tight"] == [], narrow
    page.locator("#curriculum").screenshot(path=str(artifacts / "curriculum-390.png"))
    # The circuits panel follows the live run, which stopped after one snapshot: its loss curve is a dot,
    # with one step and one loss under and beside it (two labels on the same spot read as "2525").
    labels = page.locator("#circ-loss text.xp-fig-label").all_text_contents()
    assert len(labels) == len(set(labels)), labels
    assert not errors, errors

    # -- the address bar holds the lab's settings: a copied link opens the same ones
    link = page.url
    assert f"ft_base={mine}" in link and "ft_steps=4" in link and "steps=200" in link
    page.goto("about:blank")
    page.goto(link)
    page.wait_for_selector("#curriculum [data-ready='curriculum']")
    page.wait_for_selector(f"#cur-ft-base option[value='{mine}']", state="attached")
    assert page.input_value("#cur-steps") == "200" and page.input_value("#cur-ft-steps") == "4"
    assert page.input_value("#cur-ft-base") == mine
