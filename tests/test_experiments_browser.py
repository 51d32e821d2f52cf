"""The "ask what if" section in headless Chromium, on the session's real server and SmolLM2.

One page for the module; each experiment runs once. Where two figures show the same thing, they must
agree: the scan's cell for a head equals that head's single ablation in the ablation panel, the
attribution's parts add up to the logit it shows, patching the last layer at the last position brings
the source's answer back whole, and the page shows exactly the numbers the JSON API returns.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from conftest import wait_for_page
from phone_checks import PHONE, sideways_scrollers, small_controls

pytestmark = pytest.mark.browser

READY = '#experiments [data-mount][data-ready="1"]'
IOI = "When Mary and John went to the store, John gave a drink to"
SLOW = 240_000  # ms: the scan is 270 runs of the model on a shared CPU


def api(server_url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server_url}/api/experiments/{path}", json=body, timeout=240)


def data(page, selector: str) -> dict:
    return page.eval_on_selector(selector, "e => ({...e.dataset})")


def finished(page, panel: str, before: str | None = None) -> dict:
    """Wait until the panel's run is over (done or error) and return its data-*; errors fail here."""
    wait_for_page(page, f"['done', 'error', 'cancelled'].includes("
                        f"document.querySelector('#{panel}')?.dataset.state)", timeout=SLOW / 1000)
    state = data(page, f"#{panel}")
    assert state["state"] == "done", page.inner_text(f"#{panel} .xp-errors")
    return state


def run(page, panel: str, button: str) -> dict:
    page.evaluate(f"document.querySelector('#{panel}').dataset.state = ''")
    page.click(button)
    return finished(page, panel)


def run_reading(page, panel: str, button: str, route: str) -> tuple[dict, dict, int]:
    """Run an experiment and keep the server's answer the page received: (data-*, answer, status).

    The page is checked against the very answer it drew, so no experiment is computed twice."""
    with page.expect_response(lambda r: r.url.endswith(f"/api/experiments/{route}")) as info:
        page.evaluate(f"document.querySelector('#{panel}').dataset.state = ''")
        page.click(button)
    response = info.value
    answer = response.json()
    wait_for_page(page, f"['done', 'error'].includes(document.querySelector('#{panel}').dataset.state)",
                  timeout=SLOW / 1000)
    return data(page, f"#{panel}"), answer, response.status


@pytest.fixture(scope="module")
def xp(browser, server_url):
    """One page on the experiments section, with the page's errors collected."""
    context = browser.new_context(base_url=server_url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(SLOW)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/#experiments")
    page.wait_for_selector(READY)
    yield page, errors
    context.close()


def test_the_scan_and_the_single_ablation_agree(xp, server_url, artifacts):
    page, errors = xp
    page.fill("#xp-prompt", IOI)
    page.check("#xp-raw")
    assert page.locator("#xp-scan-progress").is_hidden()  # no empty bar before the first scan
    scan = run(page, "xp-scan", "#xp-scan-run")
    assert page.locator("#xp-scan-progress").is_visible()
    L, H = int(scan["layers"]), int(scan["heads"])
    assert (L, H) == (30, 9)
    progress = page.eval_on_selector("#xp-scan-progress", "e => [e.value, e.max]")
    assert progress[0] == progress[1] > 0  # the bar reached its end
    cells = page.eval_on_selector_all(
        "#xp-scan-map rect[data-pick]",
        "els => els.map(e => [+e.dataset.layer, +e.dataset.head, +e.dataset.probAfter, +e.dataset.drop])")
    assert len(cells) == L * H
    base = float(scan["base"])
    assert all(d == pytest.approx(base - p, abs=1e-6) for _, _, p, d in cells)
    layer, head, prob_after, _ = max(cells, key=lambda c: c[3])  # the head whose loss hurts most

    # Reach that cell with the keyboard alone and pick it: the ablation panel shows that head in full.
    page.focus("#xp-scan-map rect[tabindex='0']")
    for _ in range(layer):
        page.keyboard.press("ArrowDown")
    for _ in range(head):
        page.keyboard.press("ArrowRight")
    focused = page.evaluate("[+document.activeElement.dataset.layer, +document.activeElement.dataset.head]")
    assert focused == [layer, head]
    page.evaluate("document.querySelector('#xp-ablation').dataset.state = ''")
    page.keyboard.press("Enter")
    ablation = finished(page, "xp-ablation")
    assert (ablation["kind"], int(ablation["layer"]), int(ablation["head"])) == ("head", layer, head)
    assert float(ablation["after"]) == pytest.approx(prob_after, abs=1e-4)  # scan cell = single ablation
    assert float(ablation["before"]) == pytest.approx(base, abs=1e-6)
    assert ablation["target"] == scan["target"]
    answer = api(server_url, "ablate", {"prompt": IOI, "raw": True, "kind": "head", "layer": layer,
                                        "head": head}).json()
    assert float(ablation["after"]) == answer["target_prob"]["after"]  # exactly the API's numbers
    bars = page.locator("#xp-ablate-bars rect").count()
    assert bars >= 10 + 2  # a pair of bars per token (a token outside one top list has one), and the key
    print(f"scan: head {layer}.{head} drops the answer from {base:.4f} to {prob_after:.4f}")

    # Export: the heatmap saves as an SVG file with its title and labels.
    bar = "document.querySelector('#xp-scan-map').nextElementSibling"
    wait_for_page(page, f"{bar}?.classList.contains('figure-export')")
    figure = page.evaluate(f"{bar}.dataset.figure")
    with page.expect_download() as info:
        page.locator(f".figure-export[data-figure='{figure}'] .save-svg").click()
    markup = Path(info.value.path()).read_text()
    root = ElementTree.fromstring(markup)
    words = " ".join(root.itertext())
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and "each head off" in words and "29" in words

    # A shared link opens the same experiment and runs it again, to the same numbers.
    assert "run=ablation" in page.url
    other = page.context.new_page()
    other.goto(page.url.replace(server_url, ""))
    shared = finished(other, "xp-ablation")
    assert (shared["layer"], shared["head"], shared["after"]) == (ablation["layer"], ablation["head"],
                                                                  ablation["after"])
    other.close()
    page.locator("#xp-scan").screenshot(path=str(artifacts / "experiments-scan.png"))
    assert not errors, errors


def test_the_scan_can_be_cancelled(xp):
    page, errors = xp
    page.evaluate("document.querySelector('#xp-scan').dataset.state = ''")
    page.click("#xp-scan-run")
    wait_for_page(page, "document.querySelector('#xp-scan-count').textContent !== ''")
    assert page.is_enabled("#xp-scan-cancel")
    page.click("#xp-scan-cancel")
    wait_for_page(page, "document.querySelector('#xp-scan').dataset.state === 'cancelled'")
    assert "cancelled" in page.inner_text("#xp-scan .xp-status")
    assert page.is_disabled("#xp-scan-cancel") and page.is_enabled("#xp-scan-run")
    assert not errors, errors


def test_attribution_parts_add_up_to_the_logit_shown(xp, server_url):
    page, errors = xp
    page.fill("#xp-prompt", IOI)
    got, answer, _ = run_reading(page, "xp-attribution", "#xp-attr-run", "attribute")
    assert got["state"] == "done", page.inner_text("#xp-attribution .xp-errors")
    total = float(got["embed"]) + float(got["attn"]) + float(got["mlp"])
    assert total == pytest.approx(float(got["sum"]), abs=1e-4)
    assert float(got["sum"]) == pytest.approx(float(got["logit"]), abs=1e-4)
    line = page.inner_text("#xp-attr-sum")
    assert f"= {float(got['sum']):.4f}" in line and f"{float(got['logit']):.4f}." in line
    head = page.inner_text("#xp-attr-token")
    assert f"{float(got['logit']):.4f}" in head  # the logit in the heading is the one the parts add up to
    assert (float(got["sum"]), float(got["logit"])) == (answer["sum"], answer["logit"])
    assert int(got["token"]) == answer["token"]["id"]
    for layer in answer["layers"]:  # each head's part adds up to its layer's attention part
        assert sum(layer["heads"]) == pytest.approx(layer["attn"], abs=1e-4)
    assert "frozen" in page.inner_text("#xp-attr-norm")

    # The largest head's "Switch off" runs that head's ablation in the ablation panel.
    top = page.locator("#xp-attr-heads tbody tr").first
    layer, head = top.get_attribute("data-layer"), top.get_attribute("data-head")
    assert (int(layer), int(head)) == (answer["top_heads"][0]["layer"], answer["top_heads"][0]["head"])
    page.evaluate("document.querySelector('#xp-ablation').dataset.state = ''")
    top.locator("button").click()
    ablation = finished(page, "xp-ablation")
    assert (ablation["layer"], ablation["head"]) == (layer, head)
    assert ablation["target"] == got["token"]  # both follow the model's top next token
    assert not errors, errors


def test_patching_heatmap_and_a_clear_refusal_when_lengths_differ(xp, server_url):
    page, errors = xp
    pair = {"source": "The Eiffel Tower is in the city of", "target": "The Colosseum is in the city of"}
    page.check("#xp-raw")
    page.fill("#xp-patch-source", pair["source"])
    page.fill("#xp-patch-target", pair["target"])
    got, answer, _ = run_reading(page, "xp-patching", "#xp-patch-run", "patch")
    assert got["state"] == "done", page.inner_text("#xp-patching .xp-errors")
    assert answer["answer"]["token"].replace(" ", "␣") in page.inner_text("#xp-patch-line")  # shown visibly
    rows, cols = len(answer["recovery"]), len(answer["recovery"][0])
    cells = page.eval_on_selector_all(
        "#xp-patch-map rect.xp-cell",
        "els => els.map(e => [+e.dataset.row, +e.dataset.col, e.dataset.patched])",
    )
    assert len(cells) == rows * cols == (answer["layers"] + 1) * answer["positions"]
    patched = {(r, c): float(p) for r, c, p in cells}
    assert all(patched[r, c] == answer["patched_prob"][r][c] for r in range(rows) for c in range(cols))
    # After the last layer, the last position decides the answer alone: patching it restores it whole.
    assert patched[rows - 1, cols - 1] == pytest.approx(answer["source_prob"], abs=1e-5)
    # Both prompts start with the same token, and a position reads only itself and what came before:
    # patching position 0 changes nothing, at any layer.
    assert answer["source_tokens"][0] == answer["target_tokens"][0]
    assert all(patched[r, 0] == pytest.approx(answer["target_prob"], abs=1e-5) for r in range(rows))
    assert float(got["sourceProb"]) == answer["source_prob"]
    chips = page.locator("#xp-patch-tokens .xp-tok-row").nth(1).locator(".token").count()
    assert chips == len(answer["target_tokens"])

    # Different token counts: the page says so, shows both tokenizations, and patches nothing.
    longer = "In fact, " + pair["target"]
    page.fill("#xp-patch-target", longer)
    got, refused, status = run_reading(page, "xp-patching", "#xp-patch-run", "patch")
    assert status == 422 and got["state"] == "error" and got["mismatch"] == "1"
    assert page.is_visible("#xp-patch-mismatch") and page.locator("#xp-patch-map").count() == 0
    counts = [page.locator("#xp-patch-tokens .xp-tok-row").nth(i).locator(".token").count() for i in (0, 1)]
    assert counts == [len(refused["source_tokens"]), len(refused["target_tokens"])]
    assert counts[0] != counts[1]
    assert refused["error"] in page.inner_text("#xp-patching .xp-errors")
    assert not errors, errors


def test_lens_branch_and_steering(xp, server_url):
    page, errors = xp
    prompt = "The capital of France is"
    page.fill("#xp-prompt", prompt)
    page.check("#xp-raw")

    # The whole-generation lens: every generated token x every layer, the API's numbers.
    page.fill("#xp-lens-n", "5")
    got, lens, _ = run_reading(page, "xp-lens", "#xp-lens-run", "lens")
    T, L = len(lens["tokens"]), len(lens["prob"][0])
    assert (int(got["tokens"]), int(got["layers"])) == (T, L)
    probs = page.eval_on_selector_all("#xp-lens-map rect.xp-cell", "els => els.map(e => +e.dataset.prob)")
    assert probs == [p for row in lens["prob"] for p in row]
    assert page.locator("#xp-lens-map rect.marked").count() == sum(d is not None for d in lens["decided"])
    # Greedy: each token was the top guess after the last layer, so every row is decided by then.
    last = page.eval_on_selector_all(f"#xp-lens-map rect.xp-cell[data-col='{L - 1}']",
                                     "els => els.map(e => +e.dataset.rank)")
    assert last == [1] * T and None not in lens["decided"]

    # Branching: generate, pick step 2, force another of its candidates; the branch starts with it.
    page.fill("#xp-branch-n", "5")
    page.click("#xp-branch-run")
    page.wait_for_selector("#xp-branch-steps .xp-step >> nth=1")
    page.click("#xp-branch-steps .xp-step >> nth=1")
    alt = page.locator("#xp-branch-alts .xp-alt:not([disabled])").first
    forced = int(alt.get_attribute("data-id"))
    with page.expect_response(lambda r: r.url.endswith("/api/experiments/branch")) as info:
        page.evaluate("document.querySelector('#xp-branch').dataset.state = ''")
        alt.click()
    branch = info.value.json()
    got = finished(page, "xp-branch")
    assert (got["step"], got["forced"]) == ("1", str(forced))
    assert branch["branch"]["steps"][1]["id"] == forced
    # The plain run the steps came from (rank 1 forced at step 1) is the branch's original.
    plain = page.eval_on_selector_all("#xp-branch-steps .xp-step", "els => els.map(e => +e.dataset.id)")
    assert plain == [s["id"] for s in branch["original"]["steps"]]
    assert branch["branch"]["steps"][0]["id"] == plain[0]  # the steps before the forced one are the same
    texts = page.eval_on_selector_all("#xp-branch-sides .xp-gen-text", "els => els.map(e => e.textContent)")
    assert texts == [branch["original"]["text"], branch["branch"]["text"]]
    assert page.locator("#xp-branch-sides .xp-side").nth(1).locator("li.forced").count() == 1

    # Steering at strength 0 changes nothing; the page shows the API's answers.
    page.fill("#xp-steer-n", "6")
    page.eval_on_selector("#xp-steer-strength",
                          "e => { e.value = '0'; e.dispatchEvent(new Event('input')); }")
    got = run(page, "xp-steering", "#xp-steer-run")
    before = page.inner_text("#xp-steer-before .xp-gen-text")
    after = page.inner_text("#xp-steer-after .xp-gen-text")
    assert before == after and float(got["strength"]) == 0
    assert float(got["norm"]) > 0
    assert not errors, errors


def test_layout_accessibility_and_screenshots(xp, artifacts):
    page, errors = xp
    page.locator("#experiments").screenshot(path=str(artifacts / "experiments-desktop.png"))
    from axe_playwright_python.sync_playwright import Axe

    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
    found = Axe().run(page, context="#experiments", options={"runOnly": {"type": "tag", "values": tags},
                                                             "resultTypes": ["violations"]})
    bad = [(v["id"], [n["target"] for n in v["nodes"][:5]]) for v in found.response["violations"]
           if v.get("impact") in ("serious", "critical")]
    assert not bad, bad
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    assert not sideways_scrollers(page, "#experiments"), sideways_scrollers(page, "#experiments")
    assert not small_controls(page, "#experiments"), small_controls(page, "#experiments")
    page.locator("#experiments").screenshot(path=str(artifacts / "experiments-phone.png"))
    assert not errors, errors


def test_presets_fill_an_experiment_run_it_and_say_what_to_look_for(xp, server_url):
    page, errors = xp
    presets = httpx.get(f"{server_url}/api/experiments/presets", timeout=60).json()
    assert page.locator("#xp-presets .xp-preset").count() == len(presets) >= 3
    shown = page.eval_on_selector_all("#xp-presets .xp-preset", "els => els.map(e => e.textContent)")
    assert shown == [p["title"] for p in presets]
    quick = {"attribute": "xp-attribution", "attribution": "xp-attribution", "ablate": "xp-ablation",
             "ablation": "xp-ablation", "patch": "xp-patching", "patching": "xp-patching"}
    preset = min((p for p in presets if p["experiment"] in quick),  # one that runs in a second or two
                 key=lambda p: not p["experiment"].startswith("attribut"))
    panel = quick[preset["experiment"]]
    page.evaluate(f"document.querySelector('#{panel}').dataset.state = ''")
    page.click(f"#xp-presets [data-preset='{preset['id']}']")
    finished(page, panel)
    note = page.inner_text("#xp-preset-note")
    assert preset["look_for"] in note and preset["measured"] in note
    if preset.get("prompt"):
        assert page.input_value("#xp-prompt") == preset["prompt"]
    if preset.get("source"):
        assert page.input_value("#xp-patch-source") == preset["source"]
    assert not errors, errors
