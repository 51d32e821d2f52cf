"""Every "view code" link on the page, opened in headless Chromium.

Each inference stage's id is the name of the module that computes it (architecture.md), so the
source its links show must come from that module: stage `tokenizer` shows inference/tokenizer.py,
stage `transformer` shows model/transformer.py. The other sections' links must show the module
their name says. Together the links on the page are exactly the allowlist in web/code_links.py.
Screenshots: test-artifacts/code-links-desktop.png (1280 wide) and code-links-phone.png (390).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for_page

import prediction_machine
from prediction_machine.web.code_links import SOURCE_NAMES

pytestmark = pytest.mark.browser

PACKAGE = Path(prediction_machine.__file__).resolve().parent
STAGES = ["tokenizer", "embedding", "transformer", "prediction", "sampling", "generation"]


def module_file(name: str) -> str:
    """'prediction_machine.model.transformer.Block.forward' -> 'prediction_machine/model/transformer.py'."""
    parts = name.split(".")
    for cut in range(len(parts), 1, -1):
        if (PACKAGE.parent.joinpath(*parts[: cut - 1]) / f"{parts[cut - 1]}.py").is_file():
            return "/".join(parts[:cut]) + ".py"
    raise AssertionError(f"no module file for {name}")


def open_links(page, scope: str) -> list[tuple[str, str, str]]:
    """Open every code link under `scope`; (qualname, file shown, source shown) for each."""
    links = page.locator(f"{scope} details.code-link")
    seen = []
    for i in range(links.count()):
        link = links.nth(i)
        name = link.locator("summary code").inner_text()
        link.locator("summary").click()
        shown = link.locator("pre.code[data-file]")
        shown.wait_for(timeout=30_000)
        seen.append((name, shown.get_attribute("data-file"), shown.inner_text()))
    return seen


def check(name: str, file: str, source: str) -> None:
    assert file == module_file(name), (name, file)
    assert source.startswith(f"# {file}, line "), source[:120]
    last = name.rsplit(".", 1)[1]
    assert f"def {last}(" in source or f"class {last}" in source, (name, source[:300])


def test_each_view_code_link_shows_its_own_module(page, artifacts):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    everything: set[str] = set()

    # -- inference: each stage's links come from the module named by the stage's id
    assert page.locator("#inference article.stage").evaluate_all("els => els.map(e => e.id)") == [
        f"stage-{s}" for s in STAGES
    ]
    for stage in STAGES:
        seen = open_links(page, f"#stage-{stage}")
        assert seen, f"stage {stage} has no view-code link"
        for name, file, source in seen:
            check(name, file, source)
            assert file.endswith(f"/{stage}.py"), (stage, file)
            everything.add(name)
    assert (
        page.locator("#stage-tokenizer pre.code")
        .inner_text()
        .startswith("# prediction_machine/inference/tokenizer.py")
    )
    assert (
        page.locator("#stage-transformer pre.code")
        .inner_text()
        .startswith("# prediction_machine/model/transformer.py")
    )
    # The sampling stage's code is the one-row draw; one line under it names its batched twin and test.
    note = page.locator("#stage-sampling .code-note").first
    assert "draw_rows" in note.inner_text() and "tests/test_batched_sampling.py" in note.inner_text()
    page.locator("#stage-tokenizer").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "code-links-desktop.png"))

    # -- backpropagation and the curriculum: links are there from the start (LoRA's inside a closed panel)
    page.wait_for_selector("#bp-playground details.code-link")
    page.click("#cur-lora > summary")
    for scope in ("#backprop", "#curriculum"):
        for name, file, source in open_links(page, scope):
            check(name, file, source)
            everything.add(name)

    # -- attention: the breakdown's links appear once one layer and one head are chosen
    page.wait_for_selector('#attention [data-mount][data-ready="1"]', timeout=120_000)
    page.click('#attention .att-cell[data-layer="2"][data-head="3"]')
    wait_for_page(page, "document.querySelector('#attention [data-mount]').dataset.head === '3'")
    page.click("#attention .att-deep summary")
    page.wait_for_selector("#attention .att-deep details.code-link", timeout=60_000)
    for name, file, source in open_links(page, "#attention"):
        check(name, file, source)
        everything.add(name)

    # -- any sequence, preference tuning, the experiments, why it makes things up: links beside each figure
    page.wait_for_selector("#sequences details.code-link", timeout=60_000)
    page.wait_for_selector("#alignment details.code-link", timeout=60_000)
    page.wait_for_selector("#experiments details.code-link", timeout=60_000)
    page.wait_for_selector("#makes_up details.code-link", timeout=60_000)
    for scope in ("#sequences", "#alignment", "#experiments", "#makes_up"):
        for name, file, source in open_links(page, scope):
            check(name, file, source)
            everything.add(name)

    assert everything == set(SOURCE_NAMES), "the page's links and web/code_links.py disagree"
    assert not errors, errors


def test_open_code_fits_a_phone(page, artifacts):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    link = page.locator("#stage-transformer details.code-link").first
    link.locator("summary").click()
    link.locator("pre.code[data-file]").wait_for(timeout=30_000)
    link.scroll_into_view_if_needed()
    assert (
        page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    )  # long lines scroll inside the code box
    page.screenshot(path=str(artifacts / "code-links-phone.png"))
