"""Recorded sessions: `prediction-machine record` saves the very events a live run streams, the server
lists and serves them within their bounds, and bad names or files are refused with their reason.

The stub model keeps it fast: a generation of a few tokens takes milliseconds.
"""

from __future__ import annotations

import json

import pytest
from conftest import make_app, read_sse
from fastapi.testclient import TestClient

from prediction_machine import limits, recording
from prediction_machine.cli import main

TIMING = {"ms", "seconds", "tokens_per_s", "cached"}  # how long a step took: not part of what is drawn


def drawn(events):
    """The events without their timings: what the page's figures are drawn from."""
    return [[name, {k: v for k, v in data.items() if k not in TIMING}] for name, data in events]


def same(a, b, where="events") -> None:
    """Equal, but for floats within 1e-5: the recording runs the textbook loop, the server its batched
    decode loop, tested equal to it to within float32 rounding (the tokens themselves are identical)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-7), where
    else:
        assert a == b, where


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RECORDINGS", str(tmp_path))
    return tmp_path


def test_a_recorded_generation_holds_the_events_the_live_stream_sends(stub, folder, capsys):
    args = ["record", "generation", "--model", stub, "--name", "stub-run", "--prompt", "hello there",
            "--seed", "11", "--temperature", "1.0", "--top-k", "5", "--max-new-tokens", "6"]
    assert main(args) == 0
    rec = json.loads((folder / "stub-run.json").read_text())
    assert rec["kind"] == "generation" and rec["request"]["seed"] == 11
    body = {"prompt": "hello there", "chat": False, "seed": 11, "temperature": 1.0, "top_k": 5,
            "max_new_tokens": 6, "top_n": 10}
    with TestClient(make_app(model=stub), base_url="http://127.0.0.1") as c:
        live = read_sse(c.post("/api/generate", json=body))
        listed = c.get("/api/recordings").json()["recordings"]
        served = c.get("/api/recordings/stub-run").json()
        missing = c.get("/api/recordings/no-such-run")
        bad = c.get("/api/recordings/..%2Fsecret")
    same(drawn(rec["events"]), drawn([list(e) for e in live]))
    assert [e[0] for e in rec["events"]] == ["start"] + ["step"] * 6 + ["done"]
    mine = [r for r in listed if r["name"] == "stub-run"]
    assert mine and mine[0]["source"] == "recorded" and mine[0]["events"] == 8
    assert served == rec
    assert missing.status_code == 404 and "no recording called" in missing.json()["error"]
    assert bad.status_code in (404, 422)


def test_the_shipped_recordings_are_listed_valid_and_small():
    shipped = sorted(recording.SHIPPED.glob("*.json"))
    assert {p.stem for p in shipped} >= {"capital-of-france", "tiny-pretraining"}
    for path in shipped:
        assert path.stat().st_size <= limits.MAX_RECORDING_BYTES
        rec = recording.check(json.loads(path.read_text()))
        assert rec["events"][-1][0] == "done"


def test_bad_recordings_are_refused_or_left_out(stub, folder, capsys):
    assert main(["record", "generation", "--model", stub, "--name", "../up", "--prompt", "hi"]) == 2
    assert "--name" in capsys.readouterr().err
    assert main(["record", "generation", "--model", stub, "--name", "x", "--prompt", "hi",
                 "--max-new-tokens", "999"]) == 2
    assert "1 to 64" in capsys.readouterr().err
    (folder / "broken.json").write_text("{not json")
    (folder / "huge.json").write_text(" " * (limits.MAX_RECORDING_BYTES + 1))
    (folder / "wrong.json").write_text(json.dumps({"format": 1, "kind": "poem", "title": "t",
                                                   "events": [["done", {}]]}))
    names = {r["name"] for r in recording.catalogue()}
    assert not names & {"broken", "huge", "wrong"}
    for name in ("broken", "huge", "wrong"):
        with pytest.raises(recording.RecordingError):
            recording.load(name)
    too_big = {"format": 1, "kind": "generation", "title": "t",
               "events": [["step", {"x": "a" * limits.MAX_RECORDING_BYTES}], ["done", {}]]}
    with pytest.raises(recording.RecordingError, match="size"):
        recording.save(too_big, "big", folder)


def test_the_list_is_bounded(folder):
    one = {"format": 1, "kind": "generation", "title": "t", "events": [["done", {}]]}
    for i in range(limits.MAX_RECORDINGS + 5):
        recording.save(one, f"r{i}", folder)
    assert len(recording.catalogue()) == limits.MAX_RECORDINGS
