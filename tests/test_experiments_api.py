"""The experiment routes: the same numbers as the library, refusals that name the limit, a busy 429.

One app on the tiny Shakespeare model for the module; the figures that show the same thing are
checked against each other (the scan's cell for L.H is the single ablation of L.H).
"""

import threading

import pytest
from conftest import make_app, read_sse
from fastapi.testclient import TestClient

from prediction_machine.experiments import head_scan

PROMPT = "ROMEO:\nWhat say you to"
SOURCE, TARGET = "I will go with you, sir", "I will go with you, my"


@pytest.fixture(scope="module")
def client():
    with TestClient(make_app(model="shakespeare-base"), base_url="http://127.0.0.1") as c:
        yield c


def post(client, route: str, **body):
    return client.post(f"/api/experiments/{route}", json={"raw": True, **body})


def test_the_scans_cell_is_the_single_ablation_and_the_tables_are_sorted(client):
    events = read_sse(post(client, "scan", prompt=PROMPT))
    names = [name for name, _ in events]
    assert names[-2:] == ["result", "done"] and names.count("progress") == 5
    scan = events[-2][1]
    assert (scan["layers"], scan["heads"], scan["method"]) == (4, 4, "zero")
    for layer, head in [(0, 1), (3, 2)]:
        one = post(client, "ablate", prompt=PROMPT, kind="head", layer=layer, head=head).json()
        assert one["target"] == scan["target"]
        assert one["part"] == {"kind": "head", "layer": layer, "head": head}
        assert one["target_prob"]["before"] == pytest.approx(scan["base_prob"], abs=1e-6)
        assert one["target_prob"]["after"] == pytest.approx(scan["prob_after"][layer][head], abs=1e-5)
        assert scan["drop"][layer][head] == pytest.approx(scan["base_prob"] - scan["prob_after"][layer][head])
        for table in (one["before"]["top"], one["after"]["top"]):
            probs = [row["model_prob"] for row in table]
            assert len(table) == 10 and probs == sorted(probs, reverse=True)
    mlp = post(client, "ablate", prompt=PROMPT, kind="mlp", layer=3).json()
    assert mlp["part"] == {"kind": "mlp", "layer": 3} and mlp["method"] == "zero"


def test_attribution_and_patching_answers_add_up(client):
    a = post(client, "attribute", prompt=PROMPT).json()
    parts = a["embed"] + sum(row["attn"] + row["mlp"] for row in a["layers"])
    assert a["sum"] == pytest.approx(parts) and abs(a["sum"] - a["logit"]) < 1e-4
    assert all(abs(sum(row["heads"]) - row["attn"]) < 1e-4 for row in a["layers"])
    assert len(a["top_heads"]) == 10 and a["final_norm_scale"] > 0
    p = post(client, "patch", source=SOURCE, target=TARGET).json()
    assert (p["layers"], p["positions"]) == (4, 7) and len(p["recovery"]) == 5
    assert all(len(row) == 7 for row in p["recovery"] + p["patched_prob"])
    assert p["recovery"][4][6] == pytest.approx(1.0, abs=1e-4)  # the final stream decides the answer
    assert p["answer"]["token"] == ","


HEAD = {"prompt": PROMPT, "kind": "head"}
TOO_LONG = "is 65 tokens long; the limit for experiments is 64"


@pytest.mark.parametrize("route, body, message", [
    ("ablate", {**HEAD, "layer": 4, "head": 0}, "layer: is 4; this model's layers are 0..3"),
    ("ablate", {**HEAD, "layer": 0, "head": 4}, "head: is 4; this model's heads are 0..3"),
    ("ablate", {**HEAD, "layer": 0}, "head: kind 'head' needs a head in 0..3"),
    ("ablate", {**HEAD, "kind": "mlp", "layer": 0, "head": 1}, "head: only kind 'head' takes a head"),
    ("ablate", {"prompt": "", "kind": "mlp", "layer": 0}, "prompt: String should have at least 1 character"),
    ("scan", {"prompt": "x" * 65}, f"prompt: {TOO_LONG}"),
    ("attribute", {"prompt": PROMPT, "token": 512}, "token: is 512; this model's ids are 0..511"),
    ("patch", {"source": "x" * 65, "target": "y"}, f"source: {TOO_LONG}"),
])
def test_bad_input_is_a_422_naming_the_limit(client, route, body, message):
    r = post(client, route, **body)
    assert r.status_code == 422 and r.json()["error"].startswith(message), r.text


def test_prompts_of_different_lengths_are_refused_with_both_tokenizations(client):
    r = post(client, "patch", source="My lord, I", target="My lady, I")
    assert r.status_code == 422
    body = r.json()
    assert body["error"].startswith("target: the source is 6 tokens and the target 7")
    assert [t["token"] for t in body["target_tokens"]] == ["M", "y", " l", "ad", "y", ",", " I"]
    assert len(body["source_tokens"]) == 6


def test_a_scan_while_every_place_is_taken_is_a_429(monkeypatch):
    release, started = threading.Event(), threading.Event()
    real = head_scan.scan_steps

    def held(lm, ids, raw=False):  # the real scan, held after its plain run until the test lets go
        steps = real(lm, ids, raw)
        yield next(steps)
        started.set()
        release.wait(10)
        yield from steps

    monkeypatch.setattr(head_scan, "scan_steps", held)
    app = make_app(model="shakespeare-base", max_running=1, max_queued=0)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        first: dict = {}
        t = threading.Thread(target=lambda: first.update(r=post(c, "scan", prompt=PROMPT)))
        t.start()
        try:
            assert started.wait(10)
            busy = post(c, "scan", prompt=PROMPT)
            assert busy.status_code == 429 and "busy" in busy.json()["error"], busy.text
        finally:
            release.set()
            t.join(10)
        assert [name for name, _ in read_sse(first["r"])][-1] == "done"
        assert post(c, "scan", prompt=PROMPT).status_code == 200  # the place is free again


def test_presets_are_a_list(client):
    r = client.get("/api/experiments/presets")
    assert r.status_code == 200 and isinstance(r.json(), list)
