"""What the run routes answer: another student's run is as absent as a run that does not exist, and a
resumed run says which of the request's settings it did not use (it keeps its own)."""

from __future__ import annotations

import shutil

from conftest import make_app, read_sse
from fastapi.testclient import TestClient

from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.training.curriculum import runs

TOKEN = "run-answers-token-7c1d2e"
STUDENT = {"authorization": f"Bearer {TOKEN}"}  # an API client with the class token: one student


def test_another_students_run_answers_404_like_a_missing_one(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    theirs = tmp_path / "finetune-20250101-000000"
    shutil.copytree(shipped_checkpoint("shakespeare-chat"), theirs)
    (theirs / runs.OWNER_FILE).write_text("c:someone-else")
    missing = "finetune-20250101-000009"
    app = make_app(model=stub, token=TOKEN, teacher_token=TOKEN[::-1], allowed_hosts=("*",))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        for path, field, body in (("/api/curriculum/compare", "tuned", {"question": "Who?"}),
                                  ("/api/curriculum/finetune", "base", {"steps": 1})):
            r1 = c.post(path, json={**body, field: theirs.name}, headers=STUDENT)
            r2 = c.post(path, json={**body, field: missing}, headers=STUDENT)
            assert r1.status_code == r2.status_code == 404, (path, r1.text, r2.text)
            assert r1.json()["error"] == r2.json()["error"].replace(missing, theirs.name), (r1.text, r2.text)


def test_a_resumed_run_names_the_settings_it_did_not_use(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    first = {"steps": 1, "corpus_chars": 10_000, "tokenizer": "char", "batch_size": 1, "context": 16,
             "eval_every": 1, "sample_every": 1}
    with TestClient(make_app(model=stub), base_url="http://127.0.0.1") as c:
        job = c.post("/api/curriculum/pretrain", json=first).json()["job"]
        read_sse(c.post(f"/api/curriculum/jobs/{job['id']}/events", json={}).content)  # until it ends
        r = c.post("/api/curriculum/pretrain", json={"resume": job["folder"], "steps": 2, "lr": 0.01})
        assert r.status_code == 200, r.text
        assert r.json()["ignored"] == ["lr", "steps"] and "its own settings" in r.json()["note"]
        again = r.json()["job"]["id"]
        read_sse(c.post(f"/api/curriculum/jobs/{again}/events", json={}).content)
        r = c.post("/api/curriculum/pretrain", json={"resume": job["folder"]})
        assert r.status_code == 200 and "ignored" not in r.json(), r.text
        read_sse(c.post(f"/api/curriculum/jobs/{r.json()['job']['id']}/events", json={}).content)
