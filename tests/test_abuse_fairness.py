"""Fairness a cookie cannot fool, and places that time out.

In classroom mode the client id is the one the server signed: rotating the `pm_client`
cookie, forging the session cookie or minting new sessions from one machine still gets one
client's share (and one address's). Paused training jobs time out and free their place;
playground sessions are limited per student and expire when idle.
"""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from conftest import make_app, wait_until
from hostile_model import LiveServer

from prediction_machine.training.curriculum.loop import wait_while_paused
from prediction_machine.web.jobs import JobManager
from prediction_machine.web.security import CLIENT_COOKIE, TOKEN_COOKIE
from prediction_machine.web.settings import ServerSettings

TOKEN = "abuse-fairness-token-91c2"
LONG = {"prompt": "go", "max_new_tokens": 200, "temperature": 1.0, "seed": 3, "chat": False}


def session_cookie(url: str, source: str = "127.0.0.1") -> str:
    with httpx.Client(base_url=url, timeout=20, transport=httpx.HTTPTransport(local_address=source)) as fresh:
        r = fresh.get("/", params={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303
    return "; ".join(f"{k}={v}" for k, v in r.cookies.items())


def test_forged_and_rotating_cookies_get_one_clients_share(stub):
    app = make_app(
        model=stub, token=TOKEN, allowed_hosts=("*",), max_running=1, max_queued=30, places_per_ip=3
    )
    # The one running slot is taken by a long generation elsewhere (simulated), so every admitted
    # request waits in the queue and holds its place for as long as the test needs.
    app.state.slots.running = app.state.slots.running_limit
    with LiveServer(app) as live:
        attacker = httpx.Client(
            base_url=live.url, timeout=20, transport=httpx.HTTPTransport(local_address="127.0.0.2")
        )
        honest = httpx.Client(base_url=live.url, timeout=20)  # another machine: 127.0.0.1
        bearer = {"authorization": f"Bearer {TOKEN}"}
        held = []
        try:
            # 1. The Bearer token with a new made-up pm_client cookie each time: all one client (its address).
            first = attacker.send(
                attacker.build_request(
                    "POST",
                    "/api/generate",
                    json=LONG,
                    headers={**bearer, "cookie": f"{CLIENT_COOKIE}={'a' * 20}"},
                ),
                stream=True,
            )
            held.append(first)
            assert first.status_code == 200
            rotated = [
                attacker.post(
                    "/api/generate",
                    json=LONG,
                    headers={**bearer, "cookie": f"{CLIENT_COOKIE}={secrets.token_urlsafe(18)}"},
                )
                for _ in range(10)
            ]
            assert {r.status_code for r in rotated} == {429}, [r.status_code for r in rotated]
            assert all("one at a time" in r.json()["error"] for r in rotated)
            # 2. A forged session cookie (any id, any signature) is no session at all.
            forged = f"{TOKEN_COOKIE}={secrets.token_urlsafe(18)}.{secrets.token_hex(32)}"
            assert attacker.post("/api/generate", json=LONG, headers={"cookie": forged}).status_code == 401
            # 3. Real sessions minted by opening the link again and again: the address's share (3) caps them.
            minted = [session_cookie(live.url, "127.0.0.2") for _ in range(6)]
            statuses = []
            for cookie in minted:
                r = attacker.send(
                    attacker.build_request("POST", "/api/generate", json=LONG, headers={"cookie": cookie}),
                    stream=True,
                )
                statuses.append(r.status_code)
                if r.status_code == 200:
                    held.append(r)
                else:
                    r.read()
                    assert "network address" in r.json()["error"] or "busy" in r.json()["error"], r.json()
                    r.close()
            # 1 (Bearer) + 2 = the share of 3
            assert statuses.count(200) == 2 and statuses.count(429) == 4, statuses
            assert app.state.slots.ips.get("127.0.0.2") == 3
            # 4. An honest student elsewhere still gets a place in the queue.
            r = honest.send(
                honest.build_request(
                    "POST", "/api/generate", json=LONG, headers={"cookie": session_cookie(live.url)}
                ),
                stream=True,
            )
            held.append(r)
            assert r.status_code == 200
        finally:
            for r in held:
                r.close()
            app.state.slots.running = 0
            attacker.close()
            honest.close()
        deadline = time.time() + 5
        while time.time() < deadline and app.state.slots.admitted:
            time.sleep(0.05)
        assert app.state.slots.admitted == 0 and not app.state.slots.ips


def test_two_paused_jobs_time_out_and_free_their_places():
    manager = JobManager(2, pause_timeout_s=0.5)
    steps = []

    def work(should_stop, should_pause):
        step = 0
        while step < 10**6:
            if (yield from wait_while_paused(step, should_pause, should_stop)):
                break
            step += 1
            steps.append(step)
            yield "step", {"step": step}
            time.sleep(0.01)

    a, b = manager.start("pretrain", work), manager.start("pretrain", work)
    with pytest.raises(Exception) as full:
        manager.start("pretrain", work)
    assert full.value.status_code == 429
    t0 = time.monotonic()
    for job in (a, b):
        manager.control(job.id, "pause")
    while time.monotonic() - t0 < 15 and (a.ended is None or b.ended is None):
        time.sleep(0.02)
    took = time.monotonic() - t0
    # Not before the timeout, and on its own well before the wait above gives up. The upper bound is loose:
    # a job's end includes a full garbage collection, which took 2.1 s once in a loaded CI run.
    assert a.status == b.status == "stopped" and 0.4 < took < 10, (a.status, b.status, took)
    assert a.stopped_because == "paused for more than 0.5 s"
    assert any(n == "paused" for n, _ in a.events)
    c = manager.start("pretrain", work)  # the places are free again
    manager.control(c.id, "resume")  # a resume before the timeout keeps it running
    manager.control(c.id, "stop")
    wait_until(lambda: c.ended is not None, 10, "the stopped job to end")


def test_playground_sessions_are_limited_per_student_and_private(stub):
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), playground_sessions_per_client=2)
    body = {"dataset": "xor", "n_points": 20, "hidden": [2]}
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=20) as c:
        a, b = {"cookie": session_cookie(live.url)}, {"cookie": session_cookie(live.url)}
        made = [c.post("/api/backprop/sessions", json=body, headers=a) for _ in range(3)]
        assert [r.status_code for r in made] == [201, 201, 429]
        assert "limit per person is 2" in made[2].json()["error"]
        # others are not blocked
        assert c.post("/api/backprop/sessions", json=body, headers=b).status_code == 201
        key = made[0].json()["id"]
        # someone else's session answers as a missing one does (404, same words): no existence oracle
        ghost = key[::-1] if key[::-1] != key else key[1:] + key[0]
        for method in ("GET", "DELETE"):
            theirs = c.request(method, f"/api/backprop/sessions/{key}", headers=b)
            missing = c.request(method, f"/api/backprop/sessions/{ghost}", headers=b)
            assert theirs.status_code == missing.status_code == 404, (theirs.text, missing.text)
            assert theirs.json()["error"] == missing.json()["error"].replace(ghost, key)
        assert c.get(f"/api/backprop/sessions/{key}", headers=a).status_code == 200
    # Idle sessions expire and free the student's places.
    store = app.state.backprop_sessions
    store.idle_seconds = 0.2
    time.sleep(0.3)
    assert len(store) == 0


def test_pause_timeout_is_a_setting():
    assert ServerSettings().pause_timeout_s > 0 and ServerSettings().places_per_ip >= 1
