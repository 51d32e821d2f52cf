"""Generations first: a heavy answer steps aside between its layers while a generation decodes.

Checked in order, without timing a loaded machine: the gate's arithmetic (engine/priority.py),
the batcher telling the gate whenever it computes, and a heavy route's worker waiting at its
checkpoints. bench/soak_heavy.py measures what this does for a student's generation under a flood.
"""

from __future__ import annotations

import threading

import pytest
from conftest import make_app, wait_until
from fastapi.testclient import TestClient
from test_transformer import tiny_model

from prediction_machine.engine import priority
from prediction_machine.engine.batching import Batcher
from prediction_machine.inference.sampling import SamplingParams


def test_heavy_work_waits_in_proportion_while_generations_decode():
    gate = priority.Gate(share=0.2, max_wait_s=1.0)
    assert gate.pause_for(0.003) == 0  # no generation: full speed
    gate.generating("batcher", True)
    assert gate.pause_for(0.003) == pytest.approx(0.012)  # ran 3 ms: waits four times as long
    assert gate.pause_for(10.0) == 1.0  # never longer than the bound
    gate.generating("other", True)
    gate.generating("batcher", False)
    assert gate.busy()  # another batcher still decodes
    gate.generating("other", False)
    assert gate.pause_for(10.0) == 0


def test_a_wait_ends_when_the_generations_end_or_the_answer_is_no_longer_wanted():
    gate = priority.Gate(share=0.2, max_wait_s=60)
    gate.generating("batcher", True)
    threading.Timer(0.1, gate.generating, ("batcher", False)).start()
    assert 0.05 < gate.step_aside(100, lambda: False) < 10  # not the 60 s the bound allows
    gate.generating("batcher", True)
    gone = threading.Event()  # a client that hung up, or a shutdown
    threading.Timer(0.1, gone.set).start()
    assert 0.05 < gate.step_aside(100, gone.is_set) < 10
    assert gate.busy() and gate.waits == 2


def test_a_server_gives_the_gate_its_heavy_share_and_refuses_one_out_of_range(monkeypatch, capsys):
    from prediction_machine.cli import main
    from prediction_machine.web.app import create_app
    from prediction_machine.web.serve import ServeError, settings_from_env
    from prediction_machine.web.settings import ServerSettings

    monkeypatch.setattr(priority.GATE, "share", priority.GATE.share)  # put back after the test
    create_app(settings_from_env(ServerSettings(), {"PREDICTION_MACHINE_HEAVY_SHARE": "0.5"}))
    assert priority.GATE.share == 0.5  # the process's one gate, the one every batcher reports to
    for bad in ("0", "1.5", "-0.2", "nan"):
        with pytest.raises(ServeError, match=f"HEAVY_SHARE={bad} is out of range: .* at most 1$"):
            settings_from_env(ServerSettings(), {"PREDICTION_MACHINE_HEAVY_SHARE": bad})
    monkeypatch.setenv("PREDICTION_MACHINE_HEAVY_SHARE", "2")
    assert main(["serve", "--port", "0"]) == 2  # refused before the model loads
    assert "PREDICTION_MACHINE_HEAVY_SHARE=2 is out of range" in capsys.readouterr().err
    assert priority.GATE.share == 0.5


def test_the_batcher_computes_only_while_the_gate_says_generations_decode(monkeypatch):
    gate = priority.Gate()
    monkeypatch.setattr(priority, "GATE", gate)
    model = tiny_model(7)
    seen = []  # the gate's answer during each of the batcher's forward passes
    real_forward = model.forward

    def forward(*args, **kwargs):
        seen.append(gate.busy())
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    batcher = Batcher(model)
    req = batcher.submit([5, 9, 2], SamplingParams(temperature=0), 12)
    while (item := req.out.get(timeout=60)) is not None:
        assert not isinstance(item, Exception), item
    assert len(seen) >= 12 and all(seen)  # a prefill pass and a decode pass per new token, every one flagged
    wait_until(lambda: not gate.busy(), timeout=30, what="the idle batcher to clear its flag")


def test_a_heavy_answer_steps_aside_at_its_checkpoints_only_while_a_generation_decodes(stub, monkeypatch):
    gate = priority.Gate(share=0.5, max_wait_s=0.05)
    monkeypatch.setattr(priority, "GATE", gate)
    with TestClient(make_app(model=stub, heavy_share=0.5), base_url="http://127.0.0.1") as c:
        assert c.post("/api/trace", json={"prompt": "hello there"}).status_code == 200
        assert gate.waits == 0  # nothing decodes: the trace never waits
        gate.generating("a batcher", True)
        assert c.post("/api/trace", json={"prompt": "hello there"}).status_code == 200
        assert gate.waits >= 1  # it stepped aside between its layers
        waits = gate.waits
        assert c.post("/api/tokenize", json={"text": "hello there"}).status_code == 200
        assert gate.waits == waits  # a light route never waits
        gate.generating("a batcher", False)


def test_a_head_scan_stream_steps_aside_too(stub, monkeypatch):
    """The head scan holds a generation place, but its L x H reruns are heavy work: its stream's thread
    has the same checkpoints."""
    from conftest import read_sse

    gate = priority.Gate(share=0.5, max_wait_s=0.05)
    monkeypatch.setattr(priority, "GATE", gate)
    gate.generating("a batcher", True)
    with TestClient(make_app(model=stub, heavy_share=0.5), base_url="http://127.0.0.1") as c:
        r = c.post("/api/experiments/scan", json={"prompt": "hello there"})
    gate.generating("a batcher", False)
    assert r.status_code == 200
    events = [name for name, _ in read_sse(r.content)]
    assert events[-2:] == ["result", "done"], events[-3:]
    assert gate.waits >= 1
