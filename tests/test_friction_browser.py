"""The small frictions a learner meets, in a real browser on the tiny stub model (fast).

Keyboard focus stays on the control that was pressed; shared links always carry the seed they used;
the glossary is one click from the top; the samples boxes scroll by keyboard; control characters in
answers show as visible placeholders.
"""

from __future__ import annotations

import pytest
from conftest import wait_until

pytestmark = pytest.mark.browser

FOCUSED = "() => { const a = document.activeElement; return a.id || a.dataset.action || a.className" \
          " || a.tagName; }"


@pytest.fixture(scope="module")
def stub_url(stub, tmp_path_factory):
    from conftest import start_server

    runs = tmp_path_factory.mktemp("runs")
    # three training jobs at once, not the default two: the page must read the number the server was given
    with start_server("--model", stub, env={"PREDICTION_MACHINE_RUNS": str(runs),
                                           "PREDICTION_MACHINE_MAX_TRAINING_JOBS": "3"}) as server:
        yield server.url


def chips(page) -> list[int]:
    return [int(x) for x in page.locator("#timeline .step-chip").evaluate_all(
        "els => els.map(e => e.dataset.id)")]


def idle(page) -> bool:
    return page.get_attribute("#inference .figure", "data-running") == "0"


def test_space_on_step_keeps_the_focus_and_steps_five_times(page, stub_url):
    page.goto(stub_url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#max-tokens", "12")
    page.focus("#step")  # where a keyboard user has tabbed to
    seen = set()
    for n in range(1, 6):
        page.keyboard.press("Space")
        # focus is checked while the step runs (the button is busy) and after it is drawn
        wait_until(lambda n=n: (seen.add(page.evaluate(FOCUSED)) or len(chips(page)) == n and idle(page)),
                   timeout=60, what=f"step {n}")
    assert seen == {"step"}, seen

    # Generate from the keyboard: the focus stays on Generate through the whole run.
    page.focus("#generate")
    page.keyboard.press("Enter")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=60_000)
    assert page.evaluate(FOCUSED) == "generate"

    # A timeline chip chosen with Enter keeps the focus, though the timeline is drawn again.
    page.focus("#timeline .step-chip[data-index='2']")
    page.keyboard.press("Enter")
    wait_until(lambda: page.get_attribute("#timeline .step-chip[data-index='2']", "aria-pressed") == "true")
    assert page.evaluate("document.activeElement.dataset.index") == "2"
    page.keyboard.press("Tab")  # and Tab goes on to the next chip, not back to the top of the page
    assert page.evaluate("document.activeElement.dataset.index") == "3"


def test_start_pretraining_keeps_the_focus(page, stub_url):
    page.goto(stub_url + "/#curriculum")
    start = "[data-action='start-pretrain']"
    page.wait_for_selector(start)
    page.fill("#cur-steps", "2")
    page.focus(start)
    page.keyboard.press("Space")
    wait_until(lambda: page.get_attribute(start, "aria-disabled") == "true", timeout=30)
    assert page.evaluate(FOCUSED) == "start-pretrain"
    wait_until(lambda: page.get_attribute(start, "aria-disabled") == "false", timeout=120, what="the run")
    assert page.evaluate(FOCUSED) == "start-pretrain"

    # The samples box scrolls once long: it is a named Tab stop, so a keyboard can scroll it.
    samples = "#cur-pretrain ol.samples"
    assert page.get_attribute(samples, "tabindex") == "0" and page.get_attribute(samples, "aria-label")
    page.focus(samples)
    assert page.evaluate("document.activeElement.matches('ol.samples')")


def settled(page, quiet: float = 1.0) -> None:
    """Wait until the page has kept its height for `quiet` seconds."""
    heights = []

    def still():
        heights.append(page.evaluate("document.body.scrollHeight"))
        page.wait_for_timeout(250)
        return len(heights) > quiet * 4 and len(set(heights[-int(quiet * 4):])) == 1

    wait_until(still, timeout=60, what="the page to stop growing")


JARGON = ["NLL", "nats", "FLOPs", "SFT", "KL", "reward", "margin", "L2", "batch size", "PCA",
          "cosine similarity", "grouped-query attention", "byte token", "U+00A0 marker", "space marker"]


def test_the_glossary_is_in_the_top_navigation_and_explains_the_training_jargon(page, stub_url):
    page.goto(stub_url + "/")
    page.wait_for_selector("#glossary [data-mount][data-ready='1']")
    settled(page)  # figures above it grow as they load; a link followed then lands short of it
    page.click(".masthead nav a[href='#glossary']")
    wait_until(lambda: page.evaluate("location.hash") == "#glossary")
    # the link brings the glossary into view (the page may scroll smoothly)
    wait_until(lambda: 0 <= page.locator("#glossary-title").bounding_box()["y"] < 400, timeout=10,
               what="the glossary in view")
    listed = dict(zip(page.locator("#glossary-list dt").all_inner_texts(),
                      page.locator("#glossary-list dd").all_inner_texts(), strict=True))
    missing = [word for word in JARGON if not listed.get(word, "").endswith(".")]
    assert not missing, missing
    assert "<0x80>" in listed["byte token"] and "⟨U+00A0⟩" in listed["U+00A0 marker"]
    assert "␣" in listed["space marker"]


def generate(page, url: str, seed: str | None) -> list[int]:
    """Open `url`, optionally type a seed (None leaves the box as it is, "" clears it), and generate 6."""
    page.goto(url)
    page.wait_for_selector("#prompt-tokens .token")
    if seed is not None:
        page.fill("#seed", seed)
    page.fill("#max-tokens", "6")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=60_000)
    return chips(page)


def params(link: str) -> dict[str, str]:
    """The settings a page link carries after its '#section?'."""
    from urllib.parse import parse_qsl

    return dict(parse_qsl(link.partition("?")[2]))


def replay(page, link: str) -> list[int]:
    page.goto("about:blank")
    page.goto(link)
    page.wait_for_selector("#inference .figure[data-shared='1']", timeout=60_000)
    return chips(page)


def test_a_shared_link_always_carries_its_seed_and_replays_its_tokens(page, stub_url):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stub_url)
    for seed in ("7", ""):  # a seed the learner typed, and none (the page draws one and shows it)
        ids = generate(page, stub_url + "/", seed)
        assert len(ids) == 6 and float(page.input_value("#slider-temperature")) > 0  # sampled, not greedy
        drawn = page.input_value("#seed")
        assert drawn.isdigit() and (seed == "" or drawn == seed), drawn
        page.click("#inference [data-copy-link]")
        wait_until(lambda: "copied" in page.inner_text("#inference .copy-status"), timeout=10)
        link = page.evaluate("navigator.clipboard.readText()")
        assert link == page.evaluate("location.href") and params(link).get("seed") == drawn, link
        assert replay(page, link) == ids, f"the link {link} did not replay its tokens"

    # An old link without a seed does not silently replay seed 42: the page draws one and writes it.
    from urllib.parse import urlencode

    bare = link.partition("?")[0] + "?" + urlencode({k: v for k, v in params(link).items() if k != "seed"})
    assert "seed" not in params(bare)
    first = replay(page, bare)
    wait_until(lambda: "seed" in params(page.evaluate("location.href")), timeout=10)
    assert params(page.evaluate("location.href"))["seed"] == page.input_value("#seed")
    assert replay(page, page.evaluate("location.href")) == first


def test_control_characters_in_answers_show_as_placeholders(page, stub_url):
    """The server's real sampled answers, each with a bell character (U+0007) added, as a byte-level
    model may sample: the answer cards and the rated table show it as the token chips do."""
    import json

    def with_bell(route):
        answer = route.fetch().json()
        answer["answers"] = [f"{a}\u0007ding {i}" for i, a in enumerate(answer["answers"])]
        route.fulfill(content_type="application/json", body=json.dumps(answer))

    page.route("**/align/sample", with_bell)
    page.goto(stub_url + "/#alignment")
    page.click("[data-action='sample']")
    page.wait_for_selector("[data-action='pick-a']", timeout=60_000)  # shown when the answers differ
    cards = page.locator("#alignment .answer-card .answer").all_inner_texts()
    assert len(cards) == 2 and all("⟨U+0007⟩ding" in c for c in cards), cards
    page.click("[data-action='pick-a']")
    rated = page.locator("#alignment table.rated tbody tr").first.inner_text()
    assert rated.count("⟨U+0007⟩") == 2 and "\u0007" not in rated, rated


def test_presenter_setting_enlarges_figure_text_hides_code_links_and_is_remembered(page, stub_url, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(stub_url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#max-tokens", "3")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=60_000)
    def label_height():  # the figure may redraw between two reads, so read the height in one step
        page.wait_for_function("document.querySelector('#embedding-projection text')"
                               "?.getBoundingClientRect().height > 0")
        return page.evaluate("document.querySelector('#embedding-projection text')"
                             ".getBoundingClientRect().height")

    before = label_height()
    assert page.locator("#inference details.code-link").first.is_visible()

    page.check("#presenter-toggle")
    assert page.evaluate("document.body.classList.contains('presenter')")
    after = label_height()
    assert after >= 1.3 * before, (before, after)
    assert not page.locator("details.code-link").first.is_visible()
    page.locator("#stage-embedding").screenshot(path=str(artifacts / "presenter-embedding.png"))

    page.reload()  # remembered by this browser
    page.wait_for_selector("#prompt-tokens .token")
    assert page.is_checked("#presenter-toggle")
    assert page.evaluate("document.body.classList.contains('presenter')")
    page.uncheck("#presenter-toggle")
    page.reload()
    page.wait_for_selector("#prompt-tokens .token")
    assert not page.evaluate("document.body.classList.contains('presenter')")


def rewrite_steps(change):
    """A route handler: the server's real /api/generate stream, with change(data) applied to the data of
    each "step" event (a condition the stub model never produces, made from its real answer)."""
    import json

    def handler(route):
        events = []
        for block in route.fetch().text().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if lines.get("event") == "step":
                data = json.loads(lines["data"])
                change(data)
                block = f"event: step\ndata: {json.dumps(data)}"
            events.append(block)
        route.fulfill(content_type="text/event-stream", body="\n\n".join(events))

    return handler


def test_a_token_drawn_from_outside_the_table_is_named(page, stub_url):
    """A step that drew a token outside the model's top 10 (the drawn token's row taken out of each
    step's table: the stub model keeps 1e-8 outside its top 10, so it never draws one): the prediction
    stage names that token, not only its id."""

    def outside_the_table(data):
        data["prediction"]["rows"] = [r for r in data["prediction"]["rows"] if r["id"] != data["id"]]

    page.route("**/api/generate", rewrite_steps(outside_the_table))
    page.goto(stub_url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#max-tokens", "3")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=60_000)
    note = page.locator("#prediction-chosen")
    assert "outside" in note.inner_text()
    chip = note.locator(".token")
    assert chip.count() == 1 and chip.locator(".token-id").inner_text() == str(chips(page)[-1])
    assert chip.locator(".token-text").inner_text()  # the token's own text, made visible


def test_the_new_controls_fit_a_phone(page, stub_url, artifacts):
    from tests.phone_checks import PHONE, sideways_scrollers, small_controls

    page.set_viewport_size(PHONE)
    page.goto(stub_url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.wait_for_selector("#inference [data-copy-link]")
    for root in (".masthead", "#inference .section-guide", "#curriculum .section-guide"):
        assert not small_controls(page, root), (root, small_controls(page, root))
        assert not sideways_scrollers(page, root), root
    page.locator(".masthead").screenshot(path=str(artifacts / "friction-masthead-phone.png"))
    page.locator("#inference .section-guide").screenshot(path=str(artifacts / "friction-guide-phone.png"))


def test_a_run_the_model_ended_says_why_the_stages_show_the_end_marker(page, stub_url):
    """The stages follow the newest step; after the model ends its turn that is the end-of-turn token,
    and the status says so (the stub's 3rd step is marked as the model's stop)."""

    def stop_at_third(data):
        if data["index"] == 2:
            data["finish"] = "stop"

    page.route("**/api/generate", rewrite_steps(stop_at_third))
    page.goto(stub_url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#max-tokens", "3")
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=60_000)
    status = page.inner_text("#status")
    assert "ended its turn" in status and "end-of-turn token" in status and "timeline" in status, status


def test_the_one_neuron_figure_has_share_state_beside_the_playground(page, stub_url):
    page.goto(stub_url + "/#backprop")
    page.wait_for_selector("#bp-boundary[data-step='0']", timeout=60_000)
    page.fill("#bp-n-w1", "0.9")
    page.dispatch_event("#bp-n-w1", "change")
    page.select_option("#bp-n-activation", "relu")
    link = page.evaluate("location.href")
    assert "n_w1=0.9" in link and "n_act=relu" in link, link
    page.select_option("#bp-dataset", "spiral")  # the playground writes its own keys beside them
    wait_until(lambda: "dataset=spiral" in page.evaluate("location.href"), timeout=10)
    link = page.evaluate("location.href")
    assert "n_w1=0.9" in link, link
    page.goto("about:blank")
    page.goto(link)
    page.wait_for_selector("#bp-boundary[data-step='0']", timeout=60_000)
    assert page.input_value("#bp-n-w1") == "0.9" and page.input_value("#bp-n-activation") == "relu"
    assert page.input_value("#bp-dataset") == "spiral"


def test_the_digit_bars_value_labels_never_overlap(page, stub_url):
    page.goto(stub_url + "/#sequences")
    page.wait_for_selector("#digit-step")
    overlaps = []
    for _ in range(12):  # a dozen pixels: some steps have several tall bars side by side
        page.click("#digit-step")
        page.wait_for_timeout(150)
        boxes = page.locator("#sequences svg.dist-chart >> nth=0").locator("text.dist-value").evaluate_all(
            "els => els.map(e => { const r = e.getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom]; })")
        overlaps += [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
                     if min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5]
    assert page.locator("#sequences svg.dist-chart text.dist-value").count() >= 1
    assert not overlaps, overlaps


def test_the_draw_strip_has_a_colour_key(page, stub_url, artifacts):
    page.goto(stub_url + "/#sequences")
    page.wait_for_selector("#digit-step")
    page.click("#digit-step")
    strip = page.locator("#sequences .draw >> nth=0")
    strip.locator(".strip-key li").first.wait_for()
    slices = strip.locator("svg.cumulative rect[fill]").evaluate_all(
        "els => els.map(e => [getComputedStyle(e).fill, e.querySelector('title')?.textContent || ''])")
    keys = strip.locator(".strip-key li").evaluate_all(
        "els => els.map(e => [getComputedStyle(e.querySelector('.strip-swatch')).backgroundColor,"
        " e.textContent.trim()])")
    assert keys
    for (colour, text), (fill, title) in zip(keys, slices, strict=False):  # likeliest first, in step
        assert text == title.replace(":", ""), (text, title)
        assert colour == fill, (colour, fill)
    strip.screenshot(path=str(artifacts / "friction-draw-strip.png"))


def axe_serious(page, context: str) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, context=context, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}, "resultTypes": ["violations"]})
    return [f"{v['id']}: {[n['target'] for n in v['nodes'][:4]]}" for v in found.response["violations"]
            if v.get("impact") in ("serious", "critical")]


PIANO_ROWS = """() => { const k = document.querySelector('#melody-keyboard'), box = k.getBoundingClientRect();
  const whites = [...k.querySelectorAll('.key.white')].map(b => [b.getBoundingClientRect(), b.textContent]);
  const rows = {};
  for (const [r, name] of whites) (rows[Math.round(r.top)] ||= []).push([r.left, name]);
  return { rows: Object.values(rows).map(row => row.sort((a, b) => a[0] - b[0]).map(x => x[1])),
           outside: [...k.querySelectorAll('.key')].filter(b => { const r = b.getBoundingClientRect();
             return r.left < box.left - 1 || r.right > box.right + 1; }).map(b => b.dataset.pitch),
           scrolls: k.scrollWidth > k.clientWidth + 1 }; }"""


def test_the_piano_shows_every_key_wraps_only_between_octaves_and_is_one_tab_stop(page, stub_url, artifacts):
    from tests.phone_checks import PHONE, small_controls

    for size in ({"width": 1280, "height": 900}, PHONE):
        page.set_viewport_size(size)
        page.goto(stub_url + "/#sequences")
        page.wait_for_selector("#melody-keyboard .key")
        seen = page.evaluate(PIANO_ROWS)
        assert not seen["outside"] and not seen["scrolls"], seen  # C4 to C6 all in view, G5 and above too
        rows = seen["rows"]
        assert [r[0] for r in rows] == ["C4", "C5"][: len(rows)], rows  # a row starts an octave
        assert sum(len(r) for r in rows) == 15 and len(rows) == (1 if size["width"] > 600 else 2), rows
        assert not small_controls(page, "#melody-keyboard")
        shot = artifacts / f"friction-piano-{size['width']}.png"
        page.locator("#melody-keyboard").screenshot(path=str(shot))

    # One Tab stop: Tab enters the keyboard on one key and the next Tab leaves it.
    page.fill("#melody-start", "")
    page.focus("#melody-clear")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.pitch") == "60"
    page.keyboard.press("Tab")
    assert not page.evaluate("document.activeElement.closest('#melody-keyboard')")
    page.keyboard.press("Shift+Tab")
    # arrow keys move between keys (black ones included), Home and End to the ends, Enter and Space play
    for key, pitch in (("ArrowRight", "61"), ("ArrowRight", "62"), ("End", "84"), ("ArrowLeft", "83"),
                       ("Home", "60")):
        page.keyboard.press(key)
        assert page.evaluate("document.activeElement.dataset.pitch") == pitch, key
    page.keyboard.press("Enter")
    page.keyboard.press("End")
    page.keyboard.press("Space")
    assert page.input_value("#melody-start") == "C4 C6"
    assert page.locator("#melody-keyboard [tabindex='0']").count() == 1
    assert axe_serious(page, "#melody-keyboard") == []


BOXES = """([panel, section]) => { const box = (n) => { const r = n.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom]; };
  const p = document.querySelector(panel), s = document.querySelector(section);
  return { panel: box(p), stop: p.dataset.stop, inView: box(p)[1] >= 0 && box(p)[3] <= innerHeight,
           marked: [...s.querySelectorAll('.tour-target, .tour-watch, .tour-clear')]
             .map(n => [n.className, box(n)]),
           prompt: box(document.querySelector('#prompt'))
  }; }"""


def test_the_tour_panel_covers_neither_its_control_nor_the_figure_to_watch(page, stub_url, artifacts):
    from tests.phone_checks import PHONE

    def overlap(a, b):
        return min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(stub_url + "/")
    page.wait_for_selector("#prompt-tokens .token")
    page.fill("#max-tokens", "3")
    page.click("#generate")  # every stage has its figure, so the watched ones have their full size
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=60_000)
    page.wait_for_selector("#seq-train-start")
    for size in ({"width": 1280, "height": 900}, PHONE):
        page.set_viewport_size(size)
        for section in ("inference", "sequences"):
            page.click(f"[data-tour='{section}']")
            panel = f"[data-tour-panel='{section}']"
            watched = 0
            for _ in range(int(page.get_attribute(panel, "data-stops"))):
                seen = page.evaluate(BOXES, [panel, f"#{section}"])
                watched += any("tour-watch" in name for name, _ in seen["marked"])
                covered = [name for name, box in seen["marked"] if overlap(seen["panel"], box)]
                assert not covered and seen["inView"], (section, size, seen)
                if section == "inference" and seen["stop"] == "1":  # Generate: the prompt box is typed in
                    assert not overlap(seen["panel"], seen["prompt"]), (size, seen)
                if seen["stop"] == "1":
                    page.screenshot(path=str(artifacts / f"friction-tour-{section}-{size['width']}.png"))
                page.click(f"{panel} [data-tour-action='next']")
            assert watched >= 2, (section, watched)


def test_the_page_says_how_many_training_jobs_run_at_once_and_the_setting(page, stub_url):
    page.goto(stub_url + "/#curriculum")
    note = page.locator("#cur-jobs")
    wait_until(lambda: "3 jobs" in note.inner_text(), timeout=30, what="the jobs note")
    text = note.inner_text()
    assert "max_training_jobs" in text and "PREDICTION_MACHINE_MAX_TRAINING_JOBS" in text, text
    assert "2.1 steps a second" in text  # the measurement docs/classroom.md records
