"""The learner's own work carries through a reload, in headless Chromium (one server for the module).

Pre-train on "my own text" at the shortest length the page accepts (the run picks a window that fits
and says so), fine-tune THAT run, reload the page, and compare the tuned run: it is put beside the base
its run.json records, not the shipped one. The cost table reads the runs on disk, so after the reload
it still shows them, each fine-tune beside the run it started from.
"""

from __future__ import annotations

import json

import pytest
from test_carry_through import PROSE

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from conftest import start_server

    runs = tmp_path_factory.mktemp("runs")
    env = {"PREDICTION_MACHINE_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    with start_server("--model", "shakespeare-chat", env=env) as server:
        yield server.url, runs


def cost_runs(page) -> list[str]:
    return page.get_attribute("#cur-cost table.cost", "data-runs").split(" ")


def test_my_text_trains_and_my_finetune_is_compared_with_my_base_after_a_reload(page, lab, artifacts):
    url, runs = lab
    page.set_default_timeout(180_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/#curriculum")
    page.wait_for_selector("#curriculum [data-ready='curriculum']")
    page.wait_for_function("() => document.querySelector('#cur-cost table.cost')?.dataset.runs")
    # Nothing of mine yet: the shipped chain, each model beside the one it started from.
    page.wait_for_function("() => document.querySelector('#cur-cost table.cost').dataset.runs"
                           ".endsWith('shakespeare-dpo')")
    assert cost_runs(page) == ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo"]

    # -- my own text, 500-odd characters: it trains, on a window shorter than the page's 64 tokens
    page.select_option("#cur-corpus", "text")
    page.fill("#cur-text", PROSE)
    page.fill("#cur-steps", "6")
    page.click("[data-action='start-pretrain']")
    page.wait_for_selector("#cur-ft-base option[value^='pretrain-']", state="attached")
    mine = page.locator("#cur-ft-base option[value^='pretrain-']").first.get_attribute("value")
    ratio = page.locator("#cur-pretrain .ratio").inner_text()
    context = json.loads((runs / mine / "run.json").read_text())["config"]["context"]
    assert f"reads {context} tokens at a time instead of 64" in ratio and context < 64, ratio
    assert not page.locator("#cur-pretrain .error").count()
    assert cost_runs(page)[:2] == [mine, "–"]  # my pre-training stands alone until I fine-tune it

    # -- fine-tune it, then reload: nothing the page held in memory is left
    page.select_option("#cur-ft-base", mine)
    page.fill("#cur-ft-steps", "2")
    page.click("[data-action='start-finetune']")
    page.wait_for_selector("#cur-compare .compare[data-tuned^='finetune-'] .sides")
    tuned = page.get_attribute("#cur-compare .compare", "data-tuned")
    page.reload()
    page.wait_for_selector("#curriculum [data-ready='curriculum']")
    page.wait_for_selector("#cur-compare .compare[data-tuned='shakespeare-chat'] .sides")  # the shipped pair
    page.select_option("#cur-tuned", tuned)
    with page.expect_response(lambda r: r.url.endswith("/api/curriculum/compare")
                              and (r.request.post_data_json or {}).get("tuned") == tuned) as compared:
        page.click("[data-action='compare']")
    assert "base" not in compared.value.request.post_data_json  # the server reads it from the run
    assert compared.value.json()["base_name"] == mine, (compared.value.request.post_data_json, tuned)
    page.wait_for_selector(f"#cur-compare .compare[data-tuned='{tuned}'] .sides")
    assert page.get_attribute("#cur-compare .compare", "data-base") == mine
    title = page.locator("#cur-compare .side h5").first.inner_text()
    assert title == f"Base: my run {mine} (pre-trained only)", title
    page.wait_for_function(f"() => document.querySelector('#cur-cost table.cost').dataset.runs"
                           f".startsWith('{mine} {tuned}')")
    assert cost_runs(page) == [mine, tuned, "–"]  # no preference run of mine started from it yet
    assert "tokens of my own text" in page.locator("#cur-cost").inner_text()
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#cur-compare").screenshot(path=str(artifacts / f"carry-compare-{width}.png"))
        page.locator("#cur-cost").screenshot(path=str(artifacts / f"carry-cost-{width}.png"))
    assert not errors, errors


def test_my_dpo_run_is_a_fourth_model_after_a_reload(page, lab, artifacts):
    import httpx
    from conftest import wait_until

    url, _ = lab
    page.set_default_timeout(120_000)
    r = httpx.post(url + "/api/curriculum/align", json={"steps": 2, "batch_size": 2}, timeout=30)
    assert r.status_code == 200, r.text
    job, mine = r.json()["job"]["id"], r.json()["job"]["folder"]
    wait_until(lambda: httpx.get(f"{url}/api/curriculum/jobs/{job}").json()["job"]["status"] == "finished",
               120, "the preference-tuning job to finish")
    page.goto(url + "/#alignment")
    page.wait_for_selector("#alignment [data-ready='alignment']")
    page.reload()  # the run is found on disk, not in the page's memory
    page.wait_for_selector("#alignment [data-ready='alignment']")
    page.wait_for_selector(f"#al-mine option[value='{mine}']", state="attached")
    assert page.is_visible("#al-mine-row")
    page.select_option("#al-mine", mine)
    page.click("[data-action='compare-stages']")
    page.wait_for_selector("#al-stages .stages3 .side >> nth=3")
    labels = page.locator("#al-stages .stages3 .side h5").all_inner_texts()
    assert len(labels) == 4 and mine in labels[3], labels
    # The safety table asks for the three shipped models and mine (the route takes up to four, each
    # measured on its own weights; its 40 questions per model are not waited for here)
    page.route("**/api/curriculum/align/safety", lambda route: route.abort())
    with page.expect_request("**/api/curriculum/align/safety") as asked:
        page.click("[data-action='measure-safety']")
    assert asked.value.post_data_json["models"] == ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo",
                                                   mine]
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#al-stages").screenshot(path=str(artifacts / f"carry-stages-{width}.png"))


def test_my_trained_digit_model_draws_after_a_reload_beside_the_shipped_one(page, lab, artifacts):
    url, runs = lab
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/#sequences")
    page.wait_for_selector("#seq-train-start")
    page.select_option("#seq-train-kind", "digits")
    page.fill("#seq-train-steps", "10")
    page.click("#seq-train-start")
    # The run is saved at its end; the digit figure's model list then holds it
    page.wait_for_selector("#digit-model option[value^='digits-']", state="attached")
    mine = page.get_attribute("#digit-model option[value^='digits-']", "value")
    assert json.loads((runs / mine / "run.json").read_text())["kind"] == "digits"

    page.reload()  # nothing the page held in memory is left: the run is found on disk
    page.wait_for_selector(f"#digit-model option[value='{mine}']", state="attached")
    page.select_option("#digit-model", mine)
    page.select_option("#digit-pick", "3")
    with page.expect_response("**/api/sequences/digits/draw") as drawn:
        page.click("#digit-step")
    assert drawn.value.request.post_data_json["run"] == mine and drawn.value.status == 200
    page.wait_for_selector("#digit-dist-caption")

    # Side by side: the same held-out loss the run recorded, and ten drawings each, judged alike
    page.select_option("#seq-compare-run", mine)
    page.click("#seq-compare")
    page.wait_for_selector("#seq-compare-out .side[data-side='mine'] canvas >> nth=9")
    evals = json.loads((runs / mine / "run.json").read_text())["history"]["eval"]
    loss = float(page.get_attribute("#seq-compare-out .side[data-side='mine']", "data-loss"))
    assert abs(loss - evals[-1]["eval_loss"]) < 1e-5, (loss, evals)
    shipped = float(page.get_attribute("#seq-compare-out .side[data-side='shipped']", "data-loss"))
    assert shipped < loss  # 1500 steps against 10
    assert page.locator("#seq-compare-out .side[data-side='shipped'] canvas").count() == 10
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#seq-mine").screenshot(path=str(artifacts / f"carry-digits-{width}.png"))
    assert not errors, errors


def test_axe_finds_nothing_serious_after_a_full_session_at_both_widths(page, lab, artifacts):
    """One learner's session on one page (generate, train, align, draw, compose), then axe at both widths:
    the figures are audited filled, the way the learner leaves them, not as they load."""
    from conftest import wait_until
    from test_accessibility_browser import describe, serious

    url, _ = lab
    page.set_default_timeout(120_000)
    page.emulate_media(reduced_motion="reduce")  # the digit is drawn at once, not pixel by pixel
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#max-tokens", "4")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']")
    # train: a 2-step pre-training run, its samples box filled
    page.wait_for_selector("#curriculum [data-ready='curriculum']")
    start = "[data-action='start-pretrain']"
    page.fill("#cur-steps", "2")
    page.click(start)
    wait_until(lambda: page.get_attribute(start, "aria-disabled") == "true", 30, "the run to start")
    wait_until(lambda: page.get_attribute(start, "aria-disabled") == "false", 120, "the run to end")
    # align: the three stages answer the same question
    page.wait_for_selector("#alignment [data-ready='alignment']")
    page.click("[data-action='compare-stages']")
    page.wait_for_selector("#al-stages .stages3 .side >> nth=2")
    # draw and compose
    page.click("#digit-new")
    page.wait_for_selector("#digit-verdict")
    with page.expect_response("**/api/sequences/melody/compose"):
        page.click("#melody-step")
    page.wait_for_selector("#melody-dist svg")
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # the figures that redraw on a resize have done so
        bad, everything = serious(page)
        (artifacts / f"axe-session-{width}.json").write_text(json.dumps(everything, indent=1))
        assert not bad, f"at {width}×{height}:\n{describe(bad)}"


def test_a_shared_link_reopens_the_any_sequence_and_alignment_views(page, lab):
    """A link carries each figure's settings and seed: opened, it shows the same drawing, tune and answers."""
    import httpx

    url, _ = lab
    page.set_default_timeout(120_000)
    page.emulate_media(reduced_motion="reduce")
    link = ("/#sequences?digit=7&d_temp=0.5&d_seed=11&d_paint=00000000&m_start=C5+B4&m_temp=0.8&m_seed=4"
            "&kind=melody&steps=30")
    with page.expect_response("**/api/sequences/digits/draw") as drawn, \
            page.expect_response("**/api/sequences/melody/compose") as composed:
        page.goto(url + link)
    sent = drawn.value.request.post_data_json
    assert (sent["digit"], sent["temperature"], sent["seed"], sent["prefix"]) == (7, 0.5, 11, [0] * 8), sent
    direct = httpx.post(url + "/api/sequences/digits/draw", json={"digit": 7, "temperature": 0.5, "seed": 11,
                                                                  "prefix": [0] * 8}).json()
    assert drawn.value.json()["pixels"] == direct["pixels"]
    page.wait_for_selector("#pixel-grid[data-filled='64']")
    sent = composed.value.request.post_data_json
    assert (sent["start"], sent["temperature"], sent["seed"]) == ("C5 B4", 0.8, 4), sent
    page.wait_for_function("() => document.querySelector('#melody-summary').textContent")
    assert (page.input_value("#seq-train-kind"), page.input_value("#seq-train-steps")) == ("melody", "30")
    # A new drawing writes its own seed into the address
    with page.expect_response("**/api/sequences/digits/draw"):
        page.click("#digit-new")
    page.wait_for_function("() => location.hash.includes('d_seed=12')")
    assert "digit=7" in page.evaluate("location.hash")

    page.goto("about:blank")
    question = "Where is Macbeth set?"
    link = "/#alignment?prompt=Who+is+Hamlet%27s+mother%3F&seed=5&question=Where+is+Macbeth+set%3F&asked=1"
    with page.expect_response("**/api/curriculum/align/sample") as sampled, \
            page.expect_response("**/api/curriculum/align/compare") as asked:
        page.goto(url + link)
    sent = sampled.value.request.post_data_json
    assert (sent["prompt"], sent["seed"]) == ("Who is Hamlet's mother?", 5), sent
    assert asked.value.request.post_data_json["question"] == question
    page.wait_for_selector("#al-rate .answer-card")
    page.wait_for_selector("#al-stages .stages3 .side >> nth=2")
    assert page.input_value("#al-question") == question
