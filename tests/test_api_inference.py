"""The inference API in-process: every endpoint, its payloads and its bad input."""

import json

import pytest

from tests.conftest import read_sse


def test_tokenize(client, lm):
    r = client.post("/api/tokenize", json={"text": "Hello 🙂", "chat": True})
    assert r.status_code == 200
    data = r.json()
    assert [t["id"] for t in data["tokens"]] == lm.tokenizer.encode_ids("Hello 🙂")
    assert data["chat"]["count"] > data["count"] and data["chat"]["tokens"][0]["special"]


def test_trace_payload(client, lm):
    body = {"prompt": "The cat sat on the", "chat": False, "lens_k": 3, "neighbours": 4}
    r = client.post("/api/trace", json=body)
    assert r.status_code == 200
    d = r.json()
    # One key per page stage, beside what they share.
    assert set(d) == {"model", "tokens", "ms", "embedding", "transformer", "prediction"}
    m = d["model"]
    assert (m["d_model"], m["n_heads"], m["n_layers"], m["vocab_size"]) == (576, 9, 30, 49152)
    T = len(d["tokens"])
    emb, tr = d["embedding"], d["transformer"]
    assert T == 5 and len(emb["vectors"]) == T and emb["dims"] == 576
    points = emb["projection"]["points"]
    assert len(points) == T and all(len(p["neighbours"]) == 4 for p in points)
    assert [p["id"] for p in points] == [t["id"] for t in d["tokens"]]
    assert len(emb["projection"]["explained"]) == 2
    assert len(tr["lens"]) == 30 and all(len(g["top"]) == 3 for g in tr["lens"])
    assert len(tr["attention_thumbnails"]) == 30 and len(tr["attention_thumbnails"][0]) == T
    assert tr["attention_thumbnails_note"] is None
    # A thumbnail is the layer's attention averaged over its heads; its rows sum to 1.
    assert all(abs(sum(row) - 1) < 1e-3 for layer in tr["attention_thumbnails"] for row in layer)
    # The last layer of the logit lens is the model's real prediction.
    assert tr["lens"][-1]["top"][0]["id"] == d["prediction"]["rows"][0]["id"]
    total = sum(r["raw_prob"] for r in d["prediction"]["rows"]) + d["prediction"]["mass_outside"]
    assert abs(total - 1) < 1e-4


def test_trace_long_prompt_has_no_thumbnails_and_k0_no_neighbours(client):
    d = client.post("/api/trace", json={"prompt": "word " * 60, "chat": False, "neighbours": 0}).json()
    assert d["transformer"]["attention_thumbnails"] is None
    assert "48 tokens" in d["transformer"]["attention_thumbnails_note"]
    assert all(p["neighbours"] == [] for p in d["embedding"]["projection"]["points"])


def test_sample_preview_reshapes_with_settings(client):
    base = {"prompt": "Name a colour.", "k": 10}
    cold = client.post("/api/sample/preview", json={**base, "temperature": 0.3}).json()["prediction"]
    hot = client.post("/api/sample/preview", json={**base, "temperature": 1.7}).json()["prediction"]
    assert cold["rows"][0]["prob"] > hot["rows"][0]["prob"]
    assert cold["entropy_bits"] < hot["entropy_bits"]
    topk = client.post("/api/sample/preview", json={**base, "temperature": 1.0, "top_k": 3})
    topk = topk.json()["prediction"]
    assert topk["candidates"] == 3 and sum(r["prob"] for r in topk["rows"][:3]) == pytest.approx(1, abs=1e-5)
    seeded = client.post("/api/sample/preview", json={**base, "temperature": 1.0, "seed": 5}).json()
    again = client.post("/api/sample/preview", json={**base, "temperature": 1.0, "seed": 5}).json()
    assert seeded["draw"] == again["draw"] and 0 <= seeded["draw"]["u"] < 1


def test_generate_streams_steps_then_done(client, lm):
    body = {"prompt": "What is the capital of France?", "temperature": 0, "max_new_tokens": 16}
    r = client.post("/api/generate", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = read_sse(r)
    names = [e for e, _ in events]
    assert names[0] == "start" and names[-1] == "done" and set(names[1:-1]) == {"step"}
    steps = [d for e, d in events if e == "step"]
    done = events[-1][1]
    assert done["ids"] == [s["id"] for s in steps] and "Paris" in done["text"]
    assert done["text"] == "".join(s["text"] for s in steps)
    assert steps[-1]["finish"] == "stop" and steps[-1]["id"] == lm.eos_id
    first = steps[0]
    fields = {"index", "id", "token", "text", "prob", "draw", "prediction", "cached", "ms", "finish"}
    assert fields <= set(first)
    assert first["draw"]["u"] is None  # greedy: no random draw


def test_generate_continuation_resumes_exactly(client):
    body = {"prompt": "Count: one, two,", "chat": False, "temperature": 0, "max_new_tokens": 6}
    full = read_sse(client.post("/api/generate", json=body))[-1][1]["ids"]
    first = read_sse(client.post("/api/generate", json={**body, "max_new_tokens": 2}))[-1][1]["ids"]
    answer = client.post("/api/generate", json={**body, "max_new_tokens": 4, "continuation": first})
    rest = read_sse(answer)[-1][1]["ids"]
    assert first + rest == full


def test_models_and_source(client):
    models = client.get("/api/models").json()
    assert models["default"] == "smollm2-135m-instruct"
    src = client.get("/api/source", params={"name": "prediction_machine.inference.sampling.draw"}).json()
    assert src["file"].endswith("sampling.py") and "def draw" in src["source"]
    assert client.get("/api/source", params={"name": "os.system"}).status_code == 404
    assert client.get("/api/source", params={"name": "prediction_machine.nope"}).status_code == 404


def test_every_shipped_model_is_listed_and_a_text_route_takes_each_text_model_by_name(client):
    listed = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert {"shakespeare-base", "shakespeare-chat", "shakespeare-dpo", "digits", "melody"} <= set(listed)
    assert all(not m["source"].startswith("/") for m in listed.values())  # package-relative paths
    r = client.post("/api/tokenize", json={"text": "ROMEO:", "model": "shakespeare-dpo"})
    assert r.status_code == 200 and r.json()["model"] == "shakespeare-dpo"
    r = client.post("/api/tokenize", json={"text": "ROMEO:", "model": "digits"})
    assert r.status_code == 422 and r.json()["error"].startswith("model: digits reads pixels, not text")


def test_openapi_documents_the_limits(client):
    schema = client.get("/openapi.json").json()
    gen = schema["components"]["schemas"]["GenerateRequest"]["properties"]
    assert gen["temperature"]["maximum"] == 2 and gen["temperature"]["minimum"] == 0
    assert gen["max_new_tokens"]["maximum"] == 512
    assert gen["prompt"]["maxLength"] == 4000


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/generate", {"prompt": "x", "temperature": -0.1}, "temperature"),
        ("/api/generate", {"prompt": "x", "temperature": 2.5}, "temperature"),
        ("/api/generate", {"prompt": "x", "top_p": 0}, "top_p"),
        ("/api/generate", {"prompt": "x", "top_k": True}, "top_k"),
        ("/api/generate", {"prompt": "x", "max_new_tokens": 0}, "max_new_tokens"),
        ("/api/generate", {"prompt": "x", "max_new_tokens": 513}, "max_new_tokens"),
        ("/api/generate", {"prompt": "x", "seed": 2**64}, "seed"),
        ("/api/generate", {"prompt": ""}, "prompt"),
        ("/api/generate", {"prompt": "x" * 4001}, "prompt"),
        ("/api/generate", {"prompt": "x", "surprise": 1}, "surprise"),
        ("/api/generate", {"prompt": "x", "continuation": [10**6]}, "continuation"),
        ("/api/trace", {"prompt": "word " * 300}, "prompt"),
        ("/api/sample/preview", {"prompt": "x", "min_p": 1}, "min_p"),
        ("/api/tokenize", {"text": "\ud800"}, "text"),
        ("/api/generate", {"prompt": "x", "model": "../../etc"}, "model"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, path, body, field):
    r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(field), r.json()
