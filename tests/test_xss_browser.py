"""XSS in a real browser: model text full of markup must show as text, everywhere.

The server runs the tiny stub model of tests/hostile_model.py, whose favourite tokens are
`<script>alert(1)</script>`, `<img src=x onerror=alert(1)>`, `"><svg onload=alert(1)>` and
invisible characters. So every token chip, probability row, timeline entry and attention
label the page draws holds an attack; the prompt and the attention sentence add more by
typing, and a crafted request puts one into a server error message. Nothing may execute
(no dialog, no element built from the markup), the text must appear verbatim, and invisible
characters must show as visible placeholders inside bidi-isolated token elements.
"""

from __future__ import annotations

import pytest

ATTACKS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>']
EVIL = "img[src='x'], svg[onload], [onerror], [onload], script:not([src]), iframe, object, embed"


@pytest.fixture(scope="module")
def stub_url(stub, tmp_path_factory):
    from conftest import start_server

    runs = tmp_path_factory.mktemp("runs")
    with start_server("--model", stub, env={"PREDICTION_MACHINE_RUNS": str(runs)}) as server:
        yield server.url


def no_attack_ran(page, dialogs):
    assert dialogs == [], f"a dialog fired: {dialogs}"
    assert page.locator(EVIL).count() == 0, page.locator(EVIL).evaluate_all(
        "els => els.map(e => e.outerHTML)"
    )
    assert page.evaluate("window.__pwned === undefined")


@pytest.mark.browser
def test_hostile_model_text_shows_as_text_everywhere(page, stub_url, artifacts):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_viewport_size({"width": 1200, "height": 1600})
    page.goto(stub_url + "/")

    # -- inference: a typed prompt full of markup, then the stub model's own hostile tokens
    prompt = ATTACKS[0] + " " + ATTACKS[1] + ATTACKS[2] + "\u202eevil\u200b\n leading"
    page.fill("#prompt", prompt)
    page.fill("#max-tokens", "12")
    page.click("#generate")
    # (no wait_for_function: our CSP forbids eval)
    page.locator("#timeline .step-chip").nth(11).wait_for(timeout=30_000)
    page.wait_for_selector("#prediction-table tbody tr")

    chips = page.locator("#prompt-tokens .token-text")
    shown = "".join(chips.all_text_contents())
    for attack in ATTACKS:
        assert attack.replace(" ", "␣") in shown  # verbatim, with spaces made visible
    # The stub's tokenizer has no merges: U+202E is typed as three byte tokens, shown as bytes.
    assert "<0xE2><0x80><0xAE>" in shown and "↵" in shown and "␣leading" in shown
    assert "\u202e" not in shown and "\u200b" not in shown
    # Generated whole tokens hold U+202E, U+200B, a newline and a leading space: placeholders.
    generated = "".join(page.locator("#inference .token-text").all_text_contents())
    for placeholder in ("⟨U+202E⟩evil⟨U+202C⟩", "zero⟨U+200B⟩width", "line↵break", "␣leading"):
        assert placeholder in generated, placeholder
    assert not any(c in generated for c in "\u202e\u202c\u200b\n")
    # Each token's text is its own bidi island: an RTL override cannot flip its neighbours.
    # Found and read in one step inside the page: evaluate_all finds the chips, then reads them in a
    # second call, and a chip the page redrew in between reads as detached, with no computed style.
    tags = set(
        page.evaluate(
            "() => [...document.querySelectorAll('#inference .token-text')]"
            ".map(e => e.tagName + ':' + getComputedStyle(e).unicodeBidi)"
        )
    )
    assert tags == {"BDI:isolate"}, tags

    section = page.locator("#inference").inner_text()
    for attack in ATTACKS:  # generated tokens: timeline, prediction and sampling tables
        assert attack in section or attack.replace(" ", "␣") in section, attack
    table = page.locator("#prediction-table").inner_text()
    assert any(a in table or a.replace(" ", "␣") in table for a in ATTACKS)
    no_attack_ran(page, dialogs)
    page.locator("#inference").screenshot(path=str(artifacts / "xss-inference.png"))

    # -- attention: a typed sentence of markup; the labels are the stub's tokens of it
    page.fill("#att-text", ATTACKS[1] + " " + ATTACKS[2])
    page.press("#att-text", "Enter")
    page.locator("#attention", has_text="onerror").wait_for(timeout=30_000)
    labels = page.locator("#attention").inner_text()
    # The explorer cuts words at punctuation: "<", "img", "src", "=", "x", "onerror", ...
    for word in ("img", "onerror", "alert", "svg", "onload"):
        assert f"\n{word}\n" in labels, word
    no_attack_ran(page, dialogs)
    page.locator("#attention").screenshot(path=str(artifacts / "xss-attention.png"))

    # -- an error message that echoes hostile input, shown the way every section shows errors
    message = page.evaluate(
        """async (name) => {
            const api = await import('/static/js/lib/api.js');
            const dom = await import('/static/js/lib/dom.js');
            try { await api.post('/api/tokenize', {text: 'x', model: name}); return 'no error'; }
            catch (e) {
                const box = dom.errorBox(e.message);
                box.id = 'xss-error';
                document.querySelector('#inference').prepend(box);
                return e.message;
            }
        }""",
        ATTACKS[1],
    )
    assert ATTACKS[1] in message
    assert ATTACKS[1] in page.locator("#xss-error").inner_text()
    no_attack_ran(page, dialogs)
    page.locator("#xss-error").screenshot(path=str(artifacts / "xss-error.png"))


@pytest.mark.browser
def test_hostile_training_text_shows_as_text_in_merges_and_samples(page, stub_url, artifacts):
    """Pre-train on a corpus made of the attacks: merges and samples show their pieces as text."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(stub_url + "/")
    corpus = (" ".join(ATTACKS) + " \u202eevil\n") * 30
    page.select_option("#cur-corpus", "text")
    page.fill("#cur-text", corpus)
    page.select_option("#cur-tokenizer", "bpe")
    page.fill("#cur-vocab", "300")
    page.fill("#cur-steps", "12")
    page.click("[data-action='start-pretrain']")
    page.locator("#cur-pretrain .sample-text").first.wait_for(timeout=60_000)
    page.locator("#cur-pretrain .merged").first.wait_for(timeout=60_000)
    merges = "".join(page.locator("#cur-pretrain .bpe li").all_inner_texts())
    samples = "".join(page.locator("#cur-pretrain .sample-text").all_inner_texts())
    assert any(piece in merges for piece in ("al", "ert", "<", "scr", "on")), merges[:300]
    assert "<" in samples or ">" in samples or "(" in samples, samples[:300]  # markup pieces, shown as text
    no_attack_ran(page, dialogs)
    page.locator("#cur-pretrain").screenshot(path=str(artifacts / "xss-training.png"))
