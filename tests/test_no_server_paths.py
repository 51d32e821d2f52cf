"""No answer or event names a folder of the server: in classroom mode every student would see them.

Walks every GET operation of the OpenAPI schema (those without path parameters, plus the ones that
take the id of a playground session or a training job created here), the schema itself, a
generation's events, and the events of one real, shortest job of every kind (pre-training,
fine-tuning, DPO and LoRA), and collects every string (keys too, recursively). None
may hold the package's folder, the project's folder, a site-packages folder, the home folder or
the temp dir. Two servers: one started with a checkpoint folder in the temp dir (the stub model),
and one with the default model, whose GGUF lives in site-packages.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import make_app, read_sse
from fastapi.testclient import TestClient

import prediction_machine
from prediction_machine.web import code_links
from prediction_machine.web import jobs as job_module

PACKAGE = Path(prediction_machine.__file__).resolve().parent


def forbidden() -> dict[str, str]:
    """What no answer may contain: each folder as this machine spells it (and resolved, if a link)."""
    places = {
        "the package folder": PACKAGE,
        "the project folder": PACKAGE.parent,
        "the home folder": Path.home(),
        "the temp dir": Path(tempfile.gettempdir()),
    }
    places.update({f"a site-packages folder ({p})": Path(p) for p in sys.path if p.endswith("-packages")})
    out = {"site-packages": "site-packages", "dist-packages": "dist-packages"}
    for what, path in places.items():
        for spelling in {str(path), str(path.resolve())}:
            if len(Path(spelling).parts) >= 2:  # a home of "/" would match every path-like text
                out[spelling] = what
    return out


def strings(value, where: str = ""):
    """Every string in a JSON value, with where it sits."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{where}.{k}", str(k)
            yield from strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")


def leaks(label: str, value) -> list[str]:
    bad = forbidden()
    return [
        f"{label} {where}: {text[:200]!r} holds {what}"
        for where, text in strings(value)
        for needle, what in bad.items()
        if needle in text
    ]


def sse_events(response) -> list:
    return [{"event": name, "data": data} for name, data in read_sse(response)]


# Values for the required query parameters of GET operations (a new one must be added here).
QUERY = {("/api/source", "name"): code_links.SOURCE_NAMES[0]}


def get_answers(c: TestClient, ids: dict[str, str]) -> list[tuple[str, object]]:
    """(label, JSON) for every GET operation we can call: no path parameter, or one we hold an id for."""
    schema = c.get("/openapi.json").json()
    out = [("GET /openapi.json", schema)]
    for path, operations in schema["paths"].items():
        op = operations.get("get")
        if op is None:
            continue
        params = op.get("parameters", [])
        path_params = [p["name"] for p in params if p["in"] == "path"]
        if any(name not in ids for name in path_params):
            continue
        url = path.format(**{name: ids[name] for name in path_params})
        query = {}
        for p in params:
            if p["in"] == "query" and p.get("required"):
                assert (path, p["name"]) in QUERY, f"add a value for GET {path}?{p['name']} to QUERY"
                query[p["name"]] = QUERY[(path, p["name"])]
        r = c.get(url, params=query)
        if path.startswith("/api/class/") and r.status_code == 404:
            continue  # the classroom's routes answer only when serve has a token (tests/test_rounds.py)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        out.append((f"GET {path}", r.json()))
    return out


def no_training(stop, pause):
    yield "step", {"step": 1, "note": "placeholder job: this test checks paths, not training"}


@pytest.fixture(scope="module")
def stub_client(stub, tmp_path_factory):
    """A server started with a checkpoint folder in the temp dir, and its runs there too."""
    from prediction_machine.web import jobs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
        real_start = jobs.JobManager.start
        mp.setattr(
            jobs.JobManager,
            "start",
            lambda self, kind, work, folder=None, **kw: real_start(self, kind, no_training, folder, **kw),
        )
        with TestClient(make_app(model=stub), base_url="http://127.0.0.1") as c:
            yield c


def everything(c: TestClient, model: str | None) -> list[tuple[str, object]]:
    """Every GET answer, with a session and a job made first, plus the events of a generation and a job."""
    session = c.post("/api/backprop/sessions", json={"n_points": 20, "init_seed": 1})
    assert session.status_code == 201, session.text
    job = c.post("/api/curriculum/pretrain", json={"steps": 1})
    assert job.status_code == 200, job.text
    job_id = job.json()["job"]["id"]
    answers = [("POST /api/backprop/sessions", session.json()), ("POST /api/curriculum/pretrain", job.json())]
    answers += get_answers(c, {"key": session.json()["id"], "job_id": job_id})

    body = {"prompt": "Hi", "max_new_tokens": 2, "seed": 1, **({"model": model} if model else {})}
    r = c.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    events = sse_events(r)
    assert events[0]["event"] == "start" and events[-1]["event"] == "done", [e["event"] for e in events]
    answers.append(("POST /api/generate events", events))
    r = c.post(f"/api/curriculum/jobs/{job_id}/events", json={"after": 0})
    answers.append(("POST /api/curriculum/jobs/{job_id}/events", sse_events(r)))
    r = c.post("/api/tokenize", json={"text": "Hi", **({"model": model} if model else {})})
    answers.append(("POST /api/tokenize", r.json()))
    c.delete(f"/api/backprop/sessions/{session.json()['id']}")
    return answers


def test_the_forbidden_list_catches_a_real_path():
    assert leaks("example", {"a": [str(PACKAGE / "data" / "x.json")]})
    assert leaks("example", {str(Path(tempfile.gettempdir()) / "x"): 1})
    assert not leaks("example", {"source": "prediction_machine/data/shakespeare-base", "name": "model"})


@pytest.fixture(scope="module")
def stub_answers(stub_client):
    return everything(stub_client, "model")  # the stub's folder is called "model": answers name it so


def test_no_server_path_with_a_checkpoint_folder_model(stub_answers):
    labels = {label for label, _ in stub_answers}
    assert {
        "GET /api/models",
        "GET /api/health",
        "GET /api/backprop/sessions/{key}",
        "GET /api/curriculum/jobs/{job_id}",
        "GET /api/curriculum/runs",
        "POST /api/generate events",
    } <= labels
    found = [leak for label, value in stub_answers for leak in leaks(label, value)]
    assert not found, "\n".join(found[:20])


def test_no_server_path_with_the_default_model(client):
    """The default model: its GGUF (and the shipped checkpoints) live under site-packages or the package."""
    answers = [
        (label, value)
        for label, value in get_answers(client, {})
        if label in ("GET /openapi.json", "GET /api/models")
    ]
    r = client.post("/api/generate", json={"prompt": "Hi", "max_new_tokens": 1, "seed": 1})
    answers.append(("POST /api/generate events", sse_events(r)))
    assert json.dumps(answers[-1][1]).count('"event": "start"') == 1
    found = [leak for label, value in answers for leak in leaks(label, value)]
    assert not found, "\n".join(found[:20])


# ----------------------------------------------------------------------------- every job kind's events

REAL_START = job_module.JobManager.start  # read before a fixture replaces it
GOOD_PAIR = {"prompt": "Who is Hamlet?", "chosen": "The prince of Denmark.", "rejected": "A fish."}
# One real, shortest job of each kind: their start, checkpoint and done events name the run folder.
JOBS = [
    ("/api/curriculum/pretrain", {"steps": 1, "corpus_chars": 10_000, "tokenizer": "char", "eval_every": 1,
                                  "sample_every": 1, "batch_size": 1, "context": 16}),
    ("/api/curriculum/finetune", {"steps": 1, "batch_size": 1, "eval_every": 1}),
    ("/api/curriculum/align", {"pairs": [GOOD_PAIR], "steps": 1, "batch_size": 1}),
    ("/api/curriculum/lora", {"steps": 1, "rank": 1, "layers": 1}),
]


def test_no_server_path_in_any_job_kinds_events(stub, lm, tmp_path, monkeypatch):
    """Real jobs, not placeholders (lm: the 135M model LoRA adapts, loaded once per session)."""
    # stub_client, a module fixture, swaps in placeholder jobs until the module ends: real ones here.
    monkeypatch.setattr(job_module.JobManager, "start", REAL_START)
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    answers = []
    with TestClient(make_app(model=stub), base_url="http://127.0.0.1") as c:
        for path, body in JOBS:
            r = c.post(path, json=body)
            assert r.status_code == 200, (path, r.text)
            job = r.json()["job"]
            events = sse_events(c.post(f"/api/curriculum/jobs/{job['id']}/events", json={"after": 0}))
            names = [e["event"] for e in events]
            assert {"start", "checkpoint"} <= set(names) and names[-1] == "done", (path, names[-3:])
            answers += [(f"POST {path}", r.json()), (f"{path} events", events)]
            answers.append((f"GET job {job['kind']}", c.get(f"/api/curriculum/jobs/{job['id']}").json()))
    found = [leak for label, value in answers for leak in leaks(label, value)]
    assert not found, "\n".join(found[:20])
