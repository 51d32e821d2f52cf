"""Students cannot touch each other's work, and each one's runs stay under a disk quota.

A classroom server (in process, real sockets) with two students, A and B, who signed in
through the link, and the teacher, who holds the token itself (Bearer).
"""

from __future__ import annotations

import os
import re
import time

import httpx
from conftest import make_app, wait_until
from hostile_model import LiveServer

from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.training.curriculum import runs
from prediction_machine.web.security import CLIENT_COOKIE

TOKEN = "abuse-ownership-token-5b8e"
TEACHER = {"authorization": f"Bearer {TOKEN}"}
CORPUS = "To be, or not to be, that is the question. Whether 'tis nobler in the mind to suffer.\n" * 40
LONG_RUN = {"text": CORPUS, "tokenizer": "char", "steps": 20000, "batch_size": 2, "context": 16,
            "eval_every": 1000, "sample_every": 1000}


def student(url: str) -> dict:
    with httpx.Client(base_url=url, timeout=20) as fresh:
        r = fresh.get("/", params={"token": TOKEN}, follow_redirects=False)
    return {"cookie": "; ".join(f"{k}={v}" for k, v in r.cookies.items())}


def client_key(headers: dict) -> str:
    """The owner recorded for a student: "c:" + the client id the server signed."""
    return "c:" + re.search(CLIENT_COOKIE + r"=([^;]+)", headers["cookie"]).group(1)


def test_students_get_404_on_each_others_jobs_and_runs_the_teacher_does_not(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    # a job long enough to still run while B tries it (the classroom's step cap raised for that)
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), classroom_max_steps=20_000)
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        a, b = student(live.url), student(live.url)
        r = c.post("/api/curriculum/pretrain", json=LONG_RUN, headers=a)
        assert r.status_code == 200, r.text
        job = r.json()["job"]
        # random, not a counter and a time
        assert re.fullmatch(r"pretrain-[A-Za-z0-9_-]{16}", job["id"]), job["id"]
        jid, run_id = job["id"], job["folder"]
        wait_until(lambda: c.get(f"/api/curriculum/jobs/{jid}", headers=a).json()["job"]["last_step"], 60,
                   "the job's first step")

        # B sees nothing of A's, and every use of A's job or run is refused.
        assert jid not in [j["id"] for j in c.get("/api/curriculum/jobs", headers=b).json()["jobs"]]
        # ... and answers exactly as a job that does not exist (404, same words): no existence oracle
        ghost = "pretrain-" + "x" * 16

        def same_as_missing(r, path):
            missing = c.post(path.replace(jid, ghost), json={}, headers=b) if r.request.method == "POST" \
                else c.get(path.replace(jid, ghost), headers=b)
            assert r.status_code == missing.status_code == 404, (path, r.text, missing.text)
            assert r.json()["error"] == missing.json()["error"].replace(ghost, jid), (r.text, missing.text)

        same_as_missing(c.get(f"/api/curriculum/jobs/{jid}", headers=b), f"/api/curriculum/jobs/{jid}")
        for action in ("pause", "resume", "stop", "events"):
            path = f"/api/curriculum/jobs/{jid}/{action}"
            same_as_missing(c.post(path, json={}, headers=b), path)
        # A sees and pauses its own; the teacher sees it too and stops it.
        assert jid in [j["id"] for j in c.get("/api/curriculum/jobs", headers=a).json()["jobs"]]
        assert c.post(f"/api/curriculum/jobs/{jid}/pause", headers=a).status_code == 200
        assert jid in [j["id"] for j in c.get("/api/curriculum/jobs", headers=TEACHER).json()["jobs"]]
        assert c.post(f"/api/curriculum/jobs/{jid}/stop", headers=TEACHER).status_code == 200
        wait_until(
            lambda: c.get(f"/api/curriculum/jobs/{jid}", headers=a).json()["job"]["status"] == "stopped",
            60,
            "the job to stop",
        )

        # Runs: shipped ones for everyone, A's run for A and the teacher only.
        def listed(who):
            return {r["id"] for r in c.get("/api/curriculum/runs", headers=who).json()["runs"]}

        assert run_id in listed(a) and run_id in listed(TEACHER) and run_id not in listed(b)
        assert set(runs.SHIPPED) <= listed(b)
        resume = {**LONG_RUN, "resume": run_id}
        # someone else's run answers as a missing one does (404): its existence is not revealed
        assert c.post("/api/curriculum/pretrain", json=resume, headers=b).status_code == 404
        assert (
            c.post("/api/curriculum/finetune", json={"base": run_id, "steps": 1}, headers=b).status_code
            == 404
        )
        r = c.post("/api/curriculum/compare", json={"question": "Who?", "tuned": run_id}, headers=b)
        assert r.status_code == 404, r.text
        # A may resume its own run.
        r = c.post("/api/curriculum/pretrain", json=resume, headers=a)
        assert r.status_code == 200, r.text
        again = r.json()["job"]["id"]
        assert again != jid
        assert c.post(f"/api/curriculum/jobs/{again}/stop", headers=a).status_code == 200
        wait_until(lambda: not app.state.training_jobs.running(), 60, "no job running")


def fake_run(owner: str | None, name: str, size: int, age_days: float) -> str:
    folder = runs.runs_dir() / name
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * size)
    (folder / "prediction-machine.json").write_text("{}")
    if owner is not None:
        (folder / runs.OWNER_FILE).write_text(owner)
    stamp = time.time() - age_days * 86400
    os.utime(folder, (stamp, stamp))
    return name


def test_the_oldest_run_goes_first_past_the_quota_and_shipped_runs_stay(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), run_quota_mb=1.0, run_max_age_days=14)
    shipped = sorted(p.name for p in shipped_checkpoint("shakespeare-base").iterdir())
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        a, b = student(live.url), student(live.url)
        ka, kb = client_key(a), client_key(b)
        ancient = fake_run(ka, "pretrain-20200101-000000", 1000, age_days=30)  # past the age limit
        # 1.2 MB
        mine = [fake_run(ka, f"pretrain-2025010{i}-000000", 300_000, age_days=5 - i) for i in range(1, 5)]
        # B's, over A's quota: not A's business
        others = fake_run(kb, "pretrain-20250101-000001", 2_000_000, age_days=9)
        # no owner: made by the CLI, never pruned
        cli_run = fake_run(None, "pretrain-20240101-000000", 10, age_days=400)
        r = c.post("/api/curriculum/pretrain", json={**LONG_RUN, "steps": 1}, headers=a)
        assert r.status_code == 200, r.text
        left = {p.name for p in tmp_path.iterdir()}
        assert ancient not in left and mine[0] not in left  # the oldest of A's went first
        assert set(mine[1:]) <= left and others in left and cli_run in left
        assert sum(runs.folder_bytes(tmp_path / n) for n in mine[1:]) <= 1e6
        wait_until(lambda: not app.state.training_jobs.running(), 60, "no job running")
        assert set(runs.SHIPPED) <= {r["id"] for r in c.get("/api/curriculum/runs", headers=a).json()["runs"]}
    assert sorted(p.name for p in shipped_checkpoint("shakespeare-base").iterdir()) == shipped
    assert kb != ka


def test_with_a_teacher_token_only_the_teacher_sees_everything(stub, tmp_path, monkeypatch):
    from prediction_machine.web.jobs import JobManager

    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    teacher_token = "teacher-only-token-0c3f"
    app = make_app(model=stub, token=TOKEN, teacher_token=teacher_token, allowed_hosts=("*",))
    app.state.training_jobs = JobManager(2)

    def work(should_stop, should_pause):
        while not should_stop():
            yield "step", {"step": 1}
            time.sleep(0.05)

    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        a = student(live.url)
        job = app.state.training_jobs.start("pretrain", work, owner=client_key(a))
        # The class token in a Bearer header is a student (its address), not the teacher.
        assert c.get(f"/api/curriculum/jobs/{job.id}", headers=TEACHER).status_code == 404
        assert c.post(f"/api/curriculum/jobs/{job.id}/stop", headers=TEACHER).status_code == 404
        with httpx.Client(base_url=live.url, timeout=20) as fresh:
            r = fresh.get("/", params={"token": teacher_token}, follow_redirects=False)
            assert r.status_code == 303
            teacher_browser = {"cookie": "; ".join(f"{k}={v}" for k, v in r.cookies.items())}
        for teacher in ({"authorization": f"Bearer {teacher_token}"}, teacher_browser):
            assert job.id in [j["id"] for j in c.get("/api/curriculum/jobs", headers=teacher).json()["jobs"]]
        assert c.post(f"/api/curriculum/jobs/{job.id}/stop", headers=teacher_browser).status_code == 200
        wait_until(lambda: job.ended is not None, 10, "the job to end")


def test_align_sample_answers_from_fresh_weights_and_forgets_deleted_runs(tmp_path, monkeypatch):
    """/align/sample loads a run through /compare's small cache, keyed by the checkpoint's version."""
    import shutil

    import torch
    from fastapi.testclient import TestClient
    from safetensors.torch import load_file, save_file

    from prediction_machine.model import models
    from prediction_machine.web.routes import curriculum

    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    run = tmp_path / "finetune-20250101-000000"
    shutil.copytree(shipped_checkpoint("shakespeare-chat"), run, symlinks=False)
    body = {"prompt": "Who is Hamlet?", "model": run.name, "seed": 1, "temperature": 1.0}
    with TestClient(make_app(), base_url="http://127.0.0.1") as c:
        first = c.post("/api/curriculum/align/sample", json=body)
        assert first.status_code == 200, first.text
        assert str(run) not in models._loaded  # not in the process-wide cache that never forgets
        # "More training": new weights under a newer record, as a checkpoint writes them.
        tensors = load_file(run / "model.safetensors")
        save_file({k: torch.randn_like(v) if v.dim() == 2 else v for k, v in tensors.items()},
                  run / "model.safetensors")
        later = time.time() + 5
        os.utime(run / "prediction-machine.json", (later, later))
        second = c.post("/api/curriculum/align/sample", json=body)
        assert second.status_code == 200 and second.json()["answers"] != first.json()["answers"]
        shutil.rmtree(run)
        assert c.post("/api/curriculum/align/sample", json=body).status_code == 404
        assert not [k for k in curriculum.COMPARED.keys() if str(run) in str(k)]
