"""Identity the client cannot choose, and ceilings per address that new ids cannot get around.

The server draws every client id itself: a `pm_client` cookie the student wrote is replaced by
a fresh id, while the id the server gave a browser is kept (across a restart too, so its runs
stay its own). Since ids are free, each per-client limit has a ceiling per address: many ids
from one machine share one address's playground sessions and one address's disk.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import httpx
from conftest import make_app, wait_until
from hostile_model import LiveServer

from prediction_machine.training.curriculum import runs
from prediction_machine.web.routes.backprop import _slots
from prediction_machine.web.security import CLIENT_COOKIE, TOKEN_COOKIE

TOKEN = "abuse-identity-token-7d1e"
CORPUS = "To be, or not to be, that is the question. Whether 'tis nobler in the mind to suffer.\n" * 40
ONE_STEP = {"text": CORPUS, "tokenizer": "char", "steps": 1, "batch_size": 2, "context": 16,
            "eval_every": 1000, "sample_every": 1000}


def visit(url: str, source: str = "127.0.0.1", cookie: str | None = None) -> dict[str, str]:
    """Open the class link (with the cookie a browser would send) -> the cookies set."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, timeout=20, transport=transport) as fresh:
        headers = {"cookie": cookie} if cookie else {}
        r = fresh.get("/", params={"token": TOKEN}, headers=headers, follow_redirects=False)
    assert r.status_code == 303, r.text
    return dict(r.cookies.items())


def header(jar: dict[str, str]) -> dict:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def test_the_server_draws_the_id_and_keeps_only_its_own(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    chosen = "ChosenByTheStudent_000"
    with LiveServer(make_app(model=stub, token=TOKEN, allowed_hosts=("*",))) as live:
        jar = visit(live.url, cookie=f"{CLIENT_COOKIE}={chosen}")
        given = jar[CLIENT_COOKIE]
        assert given != chosen and not jar[TOKEN_COOKIE].startswith(chosen + ".")
        assert visit(live.url, cookie=f"{CLIENT_COOKIE}={given}")[CLIENT_COOKIE] == given  # same browser
        # Someone else's shape, a tampered tag: a new id each time.
        tampered = given[:-1] + ("0" if given[-1] != "0" else "1")
        assert visit(live.url, cookie=f"{CLIENT_COOKIE}={tampered}")[CLIENT_COOKIE] not in (tampered, given)
    # A restart (a new secret for sessions) keeps the browser's id: its runs stay its own.
    with LiveServer(make_app(model=stub, token=TOKEN, allowed_hosts=("*",))) as live:
        assert visit(live.url, cookie=f"{CLIENT_COOKIE}={given}")[CLIENT_COOKIE] == given
    assert oct((tmp_path / ".client-id-key").stat().st_mode & 0o777) == "0o600"


def test_playground_sessions_have_a_ceiling_per_address(stub):
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), playground_sessions_per_client=3,
                   playground_sessions_per_ip=4)
    body = {"dataset": "xor", "n_points": 20, "hidden": [2]}
    with LiveServer(app) as live:
        one_machine = httpx.Client(base_url=live.url, timeout=20,
                                   transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with one_machine, httpx.Client(base_url=live.url, timeout=20) as elsewhere:
            made = []
            for _ in range(3):  # three minted ids, each asking for its full share of three
                who = header(visit(live.url, "127.0.0.2"))
                made += [one_machine.post("/api/backprop/sessions", json=body, headers=who) for _ in range(3)]
            codes = [r.status_code for r in made]
            assert codes.count(201) == 4 and codes.count(429) == 5, codes
            refused = next(r for r in made if r.status_code == 429).json()["error"]
            assert "address" in refused and "4" in refused, refused
            r = elsewhere.post("/api/backprop/sessions", json=body, headers=header(visit(live.url)))
            assert r.status_code == 201, r.text


def fake_run(owner: str, name: str, size: int, age_days: float) -> str:
    folder = runs.runs_dir() / name
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * size)
    (folder / "prediction-machine.json").write_text("{}")
    (folder / runs.OWNER_FILE).write_text(owner)
    stamp = time.time() - age_days * 86400
    os.utime(folder, (stamp, stamp))
    return name


def test_the_disk_quota_has_a_ceiling_per_address(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), run_quota_mb=1.0, run_quota_mb_per_ip=1.5)
    with LiveServer(app) as live:
        one_machine = httpx.Client(base_url=live.url, timeout=30,
                                   transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with one_machine, httpx.Client(base_url=live.url, timeout=30) as elsewhere:
            ids = [header(visit(live.url, "127.0.0.2")) for _ in range(3)]
            keys = ["c:" + who["cookie"].split(f"{CLIENT_COOKIE}=")[1].split(";")[0] for who in ids]
            for who in ids:  # each id is seen from the machine
                assert one_machine.get("/api/curriculum/runs", headers=who).status_code == 200
            # Each id keeps 0.9 MB, under its own 1 MB: 2.7 MB from one address.
            held = [fake_run(k, f"pretrain-2025010{n}-000000", 900_000, age_days=5 - n)
                    for n, k in enumerate(keys, 1)]
            honest = header(visit(live.url))
            assert elsewhere.get("/api/curriculum/runs", headers=honest).status_code == 200
            honest_key = "c:" + honest["cookie"].split(f"{CLIENT_COOKIE}=")[1].split(";")[0]
            other = fake_run(honest_key, "pretrain-20250101-000009", 900_000, age_days=9)
            r = one_machine.post("/api/curriculum/pretrain", json=ONE_STEP, headers=ids[2])
            assert r.status_code == 200, r.text
            left = {p.name for p in tmp_path.iterdir()}
            kept = [n for n in held if n in left]
            assert kept == held[2:], kept  # the address's oldest went first, down to its 1.5 MB
            assert other in left  # another address's run is not this address's business
            wait_until(lambda: not app.state.training_jobs.running(), 60, "the job to end")


def test_playground_streams_have_a_ceiling_per_address(stub):
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), max_training_jobs=1, training_jobs_per_ip=2)
    body = {"dataset": "xor", "n_points": 20, "hidden": [2]}
    with LiveServer(app) as live:
        one_machine = httpx.Client(base_url=live.url, timeout=20,
                                   transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        held = []
        try:
            whos = [header(visit(live.url, "127.0.0.2")) for _ in range(3)]
            keys = [one_machine.post("/api/backprop/sessions", json=body, headers=w).json()["id"]
                    for w in whos]
            slots = _slots(SimpleNamespace(app=app))  # the playground streams' own pool
            slots.running = slots.running_limit  # taken elsewhere: each stream waits in line, holding a place
            codes = []
            for who, key in zip(whos, keys, strict=True):
                request = one_machine.build_request("POST", f"/api/backprop/sessions/{key}/stream",
                                                    json={"frames": 5}, headers=who)
                held.append(one_machine.send(request, stream=True))
                codes.append(held[-1].status_code)
            assert codes == [200, 200, 429], codes
            held[-1].read()
            assert "address" in held[-1].json()["error"]
        finally:
            for r in held:
                r.close()
            one_machine.close()


def test_the_readme_states_the_rules_as_they_are():
    """The README's security model: every setting it names with a number has that default, and the
    token and id lengths it gives are the server's."""
    import re
    from dataclasses import fields
    from pathlib import Path

    from prediction_machine.web import identity, serve
    from prediction_machine.web.settings import ServerSettings

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Security model", 1)[1].split("\n## ", 1)[0]
    defaults = {f.name: f.default for f in fields(ServerSettings)}
    named = re.findall(r"`(\w+)`\s+\(?(\d+)", section)
    assert len(named) >= 7, named
    for name, value in named:
        assert defaults[name] == float(value), f"README says {name} is {value}; it is {defaults[name]}"
    words = " ".join(section.split())
    for per_ip, per_student in (("training_jobs_per_ip", "training_jobs_per_client"),
                                ("playground_sessions_per_ip", "playground_sessions_per_client"),
                                ("run_quota_mb_per_ip", "run_quota_mb")):
        assert f"; {defaults[per_student]:g} per student)" in words.split(f"`{per_ip}`", 1)[1][:40], per_ip
    assert f"at least {serve.MIN_TOKEN_CHARS} characters" in words
    assert f"{identity.RANDOM_CHARS} random characters" in words
