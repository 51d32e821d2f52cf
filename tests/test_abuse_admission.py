"""Admission for everything that costs more than a forward pass: heavy answers and training jobs.

Heavy answers (the safety table, comparisons, trace, ...) take a place of their own, with a share
per client and per address; one whose client hangs up stops between two steps and frees its
place, and a shutdown stops them all. Training jobs: one per student, a step cap in classroom
mode, and a queue that tells each job its position instead of a bare 429.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
import torch
from conftest import make_app, wait_until
from hostile_model import LiveServer

from prediction_machine import cancel
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.training.curriculum import safety
from prediction_machine.web import admission
from prediction_machine.web.jobs import JobManager
from prediction_machine.web.security import CLIENT_COOKIE

TOKEN = "abuse-admission-token-2a6b"
SAFETY = "/api/curriculum/align/safety"


def visit(url: str, source: str = "127.0.0.1") -> str:
    with httpx.Client(base_url=url, timeout=20, transport=httpx.HTTPTransport(local_address=source)) as c:
        r = c.get("/", params={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303
    return "; ".join(f"{k}={v}" for k, v in r.cookies.items())


def send(port: int, path: str, body: dict, cookie: str, source: str) -> socket.socket:
    """A request sent and not read: its connection stays open until we close it (a hang-up)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0))
    data = json.dumps(body).encode()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              f"Cookie: {cookie}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def answer(s: socket.socket) -> tuple[int, str]:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


@pytest.fixture
def slow_table(monkeypatch):
    """The safety table as a long loop of steps that checks for cancellation as generation does."""
    seen = {"started": [], "steps": 0, "stopped": [], "finished": 0}

    def table(folders):
        name = threading.current_thread().name
        seen["started"].append(name)
        try:
            for _ in range(400):
                cancel.check()
                seen["steps"] += 1
                time.sleep(0.05)
        except cancel.Cancelled:
            seen["stopped"].append(name)
            raise
        seen["finished"] += 1
        return {"rows": [], "rule": "test"}

    monkeypatch.setattr(safety, "table", table)
    return seen


def test_heavy_answers_take_places_and_stop_when_abandoned_or_at_shutdown(stub, slow_table):
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), heavy_running=1, heavy_queued=4,
                   heavy_places_per_ip=2)
    with LiveServer(app) as live:
        a, b, c = (visit(live.url, "127.0.0.2") for _ in range(3))
        d = visit(live.url)
        first = send(live.port, SAFETY, {}, a, "127.0.0.2")
        wait_until(lambda: slow_table["steps"] > 0, 20, "the first table to run")
        slots = app.state.heavy_slots
        # One page may ask for two heavy answers at once (two figures): the second waits in line.
        queued = send(live.port, SAFETY, {}, a, "127.0.0.2")
        wait_until(lambda: len(slots.waiters) == 1, 20, "the same student's second request to wait")
        for who in (b, c):  # other ids of the same machine: its share of 2 is taken
            status, text = answer(send(live.port, SAFETY, {}, who, "127.0.0.2"))
            assert status == 429 and "address" in text, text
        elsewhere = send(live.port, SAFETY, {}, d, "127.0.0.1")
        wait_until(lambda: len(slots.waiters) == 2, 20, "another machine's request to wait in line")
        # Both of the first machine's clients hang up: the running table stops, the queued one never runs.
        queued.close()
        first.close()
        wait_until(lambda: len(slow_table["stopped"]) == 1, 10, "the abandoned table to stop")
        wait_until(lambda: len(slow_table["started"]) == 2, 10, "the other machine's table to start")
        assert slots.running == 1 and not slots.waiters and slots.admitted == 1
        # A shutdown stops the running table; its client gets 503 with Retry-After.
        t0 = time.monotonic()
        admission.begin_shutdown()
        try:
            status, text = answer(elsewhere)
            assert status == 503 and "shutting down" in text, (status, text)
            assert time.monotonic() - t0 < 5
        finally:
            admission.reset_shutdown()
        assert len(slow_table["stopped"]) == 2 and slow_table["finished"] == 0
        wait_until(lambda: slots.admitted == 0 and slots.running == 0 and not slots.ips, 10, "places free")


def test_generation_and_a_forward_pass_stop_once_nobody_wants_them(stub):
    from prediction_machine.model import models

    lm = models.load(stub)
    ids = lm.tokenizer.encode_ids("go")
    layers = []
    token = cancel.stop_when(lambda: layers.append(1) or len(layers) > 1)  # true from the 2nd check on
    try:
        with pytest.raises(cancel.Cancelled):  # a single forward pass (trace, attention) stops between layers
            lm.model(torch.tensor([ids]))
        assert len(layers) == 2
        with pytest.raises(cancel.Cancelled):
            next(iter(generate(lm.model, ids, SamplingParams(temperature=0.0), 5)))
    finally:
        cancel.reset(token)
    assert len(list(generate(lm.model, ids, SamplingParams(temperature=0.0), 5))) == 5


def test_training_jobs_wait_in_line_with_a_position_and_one_per_student():
    owners = {"c:a": "10.0.0.1", "c:b": "10.0.0.2", "c:c": "10.0.0.2", "c:d": "10.0.0.2", "c:e": "10.0.0.3"}
    manager = JobManager(1, max_queued=2, per_client=1, per_ip=2, address_of=owners.get)

    def work(should_stop, should_pause):
        while not should_stop():
            yield "step", {"step": 1}
            time.sleep(0.02)

    a = manager.start("pretrain", work, owner="c:a")
    assert a.status == "running"
    with pytest.raises(Exception) as again:
        manager.start("pretrain", work, owner="c:a")
    assert again.value.status_code == 429 and "limit per person is 1" in again.value.detail
    b = manager.start("pretrain", work, owner="c:b")
    c = manager.start("pretrain", work, owner="c:c")
    assert (b.status, b.position, c.status, c.position) == ("queued", 1, "queued", 2)
    assert b.events[-1] == ("queued", {"position": 1, "places": 1, "waiting": 1})
    with pytest.raises(Exception) as address:
        manager.start("pretrain", work, owner="c:d")  # a third id of 10.0.0.2
    assert address.value.status_code == 429 and "limit per address is 2" in address.value.detail
    with pytest.raises(Exception) as full:
        manager.start("pretrain", work, owner="c:e")
    assert full.value.status_code == 429 and "2 waiting (the limit is 2)" in full.value.detail
    manager.control(a.id, "stop")
    wait_until(lambda: b.status == "running", 10, "the first in line to start")
    assert c.position == 1 and c.events[-1][1]["position"] == 1 and b.describe()["position"] is None
    manager.control(c.id, "stop")  # leaves the line at once, never having run
    assert c.status == "stopped" and c.ended is not None and c.events[-1] == ("done", {"status": "stopped"})
    manager.control(b.id, "stop")
    wait_until(lambda: not manager.running(), 10, "every job to end")


def test_classroom_step_cap_and_one_job_per_student(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), classroom_max_steps=300)
    corpus = "To be, or not to be, that is the question.\n" * 60
    run = {"text": corpus, "tokenizer": "char", "steps": 300, "batch_size": 2, "context": 16,
           "eval_every": 1000, "sample_every": 1000}
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        student = {"cookie": visit(live.url)}
        r = http.post("/api/curriculum/pretrain", json={**run, "steps": 301}, headers=student)
        assert r.status_code == 422 and "at most 300" in r.json()["error"], r.text
        r = http.post("/api/curriculum/finetune", json={"steps": 301}, headers=student)
        assert r.status_code == 422 and "steps" in r.json()["error"], r.text
        r = http.post("/api/curriculum/pretrain", json=run, headers=student)
        assert r.status_code == 200, r.text
        job = r.json()["job"]["id"]
        http.post(f"/api/curriculum/jobs/{job}/pause", headers=student)
        again = http.post("/api/curriculum/pretrain", json=run, headers=student)
        assert again.status_code == 429 and "limit per person is 1" in again.json()["error"], again.text
        assert CLIENT_COOKIE in student["cookie"]
        teacher = {"authorization": f"Bearer {TOKEN}"}  # no teacher token: the class token is the teacher
        mine = [http.post("/api/curriculum/pretrain", json=run, headers=teacher) for _ in range(2)]
        assert [r.status_code for r in mine] == [200, 200], [r.text for r in mine]  # no share for the teacher
        for r in mine:
            http.post(f"/api/curriculum/jobs/{r.json()['job']['id']}/stop", headers=teacher)
        http.post(f"/api/curriculum/jobs/{job}/stop", headers=student)
        wait_until(lambda: not app.state.training_jobs.running(), 60, "the job to stop")


def test_every_heavy_route_exists():
    """A renamed route would silently lose its admission: each listed one must be a real POST route."""
    from prediction_machine.web.app import create_app
    from prediction_machine.web.settings import ServerSettings

    paths = create_app(ServerSettings()).openapi()["paths"]
    posts = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert admission.HEAVY_ROUTES <= posts, admission.HEAVY_ROUTES - posts


def test_heavy_requests_pass_a_rate_per_address_in_classroom_mode(stub, monkeypatch):
    """Places bound how many heavy answers run at once; the rate bounds how often one address starts one."""
    monkeypatch.setattr(safety, "table", lambda folders: {"rows": [], "rule": "test"})
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), heavy_burst_per_ip=3,
                   heavy_per_minute_per_ip=6)
    with LiveServer(app) as live:
        flood, other = visit(live.url, "127.0.0.3"), visit(live.url, "127.0.0.4")
        again = visit(live.url, "127.0.0.3")  # a second id on the same machine shares its address's bucket
        statuses = [answer(send(live.port, SAFETY, {}, who, "127.0.0.3"))
                    for who in (flood, flood, again, again)]
        assert [s for s, _ in statuses] == [200, 200, 200, 429], statuses
        assert "6 a minute, 3 at once" in statuses[3][1], statuses[3]
        with httpx.Client(base_url=live.url, timeout=20,
                          transport=httpx.HTTPTransport(local_address="127.0.0.3")) as c:
            r = c.post(SAFETY, json={}, headers={"cookie": flood})
            assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 10, r.headers
        assert answer(send(live.port, SAFETY, {}, other, "127.0.0.4"))[0] == 200  # other machines go on


def test_the_rate_refills_at_its_pace_and_forgets_full_buckets():
    rate = admission.Rate(per_minute=30, burst=2)  # one token every 2 s
    rate.take("a", now=0.0)
    rate.take("a", now=0.0)
    with pytest.raises(admission.HTTPException) as refused:
        rate.take("a", now=0.5)
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "2"
    rate.take("a", now=2.6)  # one token back after 2 s
    with pytest.raises(admission.HTTPException):
        rate.take("a", now=2.7)
    rate.take("b", now=2.7)  # each address has its own bucket
    rate._forget_full(now=100.0)
    assert rate.buckets == {}
