"""The curriculum lab in headless Chromium: pre-train live and stop, then fine-tune and compare.

The test starts its own server with the runs folder in a tmp dir (nothing lands in the user's
data dir) and one torch thread (tiny models train fastest that way on a busy machine).
"""

from __future__ import annotations

import pytest

from prediction_machine.model.models import shipped_checkpoint

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    from conftest import start_server, stop_server

    runs = tmp_path_factory.mktemp("runs")
    proc, url = start_server(env={"PREDICTION_MACHINE_RUNS": str(runs), "OMP_NUM_THREADS": "1"})
    yield url
    stop_server(proc)


def test_pretrain_live_then_finetune_and_compare(page, lab_url, artifacts):
    page.set_default_timeout(180_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(lab_url + "/#curriculum")
    page.wait_for_selector("#curriculum [data-ready='curriculum']")
    lab = page.locator("#curriculum")

    # -- pre-training: start, watch the curve fall and a sample appear, stop
    page.fill("#cur-steps", "200")
    page.click("[data-action='start-pretrain']")
    page.wait_for_selector("#cur-pretrain .merges li")
    page.wait_for_selector("#cur-pretrain .samples li")
    page.wait_for_function(
        "() => { const c = document.querySelector('[data-chart=pretrain-loss]');"
        " return c && c.dataset.last && Number(c.dataset.last) < Number(c.dataset.first) - 0.3; }"
    )
    assert lab.locator("#cur-pretrain .samples li pre").first.inner_text().startswith("Romeo:")
    assert "bytes per token" in lab.locator("#cur-pretrain .ratio").inner_text()
    assert lab.locator("#cur-pretrain .stats dd").nth(2).inner_text() != "–"  # parameter count shown
    page.locator("#cur-pretrain button", has_text="Stop").click()
    page.wait_for_function("() => document.querySelector('#cur-pretrain .status').textContent.includes('stopped')")
    page.locator("#cur-pretrain").screenshot(path=str(artifacts / "curriculum-pretrain.png"))

    # -- the stopped run is on disk and can be resumed from where it stopped
    page.wait_for_selector("#cur-resume option", state="attached")
    assert page.is_visible("#cur-resume")
    stopped_at = int(lab.locator("#cur-pretrain .stats dd").first.inner_text().split("/")[0])
    page.click("[data-action='resume-pretrain']")
    page.wait_for_function(
        f"() => parseInt(document.querySelector('#cur-pretrain .stats dd').textContent) > {stopped_at}")
    assert lab.locator("#cur-pretrain .merges li").count() > 0  # the vocabulary came back with the run
    page.locator("#cur-pretrain button", has_text="Stop").click()
    page.wait_for_function("() => document.querySelector('#cur-pretrain .status').textContent.includes('stopped')")

    # -- fine-tuning the shipped base: a few steps, then the comparison renders
    assert (shipped_checkpoint("shakespeare-base") / "prediction-machine.json").is_file()
    assert lab.locator("#cur-finetune .mask .token.trained").count() > 0
    page.fill("#cur-ft-steps", "4")
    page.click("[data-action='start-finetune']")
    # The shipped pair is compared on load; after fine-tuning, the page compares the new model.
    page.wait_for_selector("#cur-compare .compare[data-tuned='shakespeare-chat'] .sides")
    page.wait_for_selector("#cur-compare .compare[data-tuned^='finetune-'] .sides .side >> nth=1")
    assert lab.locator("#cur-compare .side h5").all_inner_texts() == ["Base (pre-trained only)", "Tuned (after fine-tuning)"]
    assert lab.locator("#cur-compare .dist tbody tr").count() >= 2
    assert "probability mass" in lab.locator("#cur-compare .moved").inner_text()
    assert "tokens of Shakespeare" in lab.locator("#cur-cost").inner_text()
    page.wait_for_selector("#cur-scale table.scale")
    page.locator("#cur-finetune").screenshot(path=str(artifacts / "curriculum-finetune.png"))
    page.locator("#cur-compare").screenshot(path=str(artifacts / "curriculum-compare.png"))
    page.locator("#cur-cost").screenshot(path=str(artifacts / "curriculum-cost.png"))
    page.locator("#cur-scale").screenshot(path=str(artifacts / "curriculum-scale.png"))
    page.set_viewport_size({"width": 375, "height": 800})
    page.locator("#cur-pretrain").screenshot(path=str(artifacts / "curriculum-phone.png"))
    assert not errors, errors
