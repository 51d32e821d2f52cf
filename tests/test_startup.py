"""A start-up that does not wait for the model: health and the page answer while it loads.

The in-process tests hold the load on an Event, so "loading" is seen for certain; the last test
starts a real `prediction-machine serve` with an empty weights cache (the slow, cold load) and
checks the order of events from outside. No test asserts a wall-clock time.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from conftest import Server
from fastapi.testclient import TestClient

from prediction_machine.model import models
from prediction_machine.web import admission
from prediction_machine.web.app import create_app


@pytest.fixture
def held_load(monkeypatch, lm):
    """models.load blocks until the test releases it (or raises what the test puts in `fail`)."""
    release, fail = threading.Event(), []
    real = models.load

    def load(name=None, precision=None):
        release.wait(20)
        if fail:
            raise fail[0]
        return real(name, precision=precision)

    monkeypatch.setattr(models, "load", load)
    return release, fail


def test_health_says_loading_and_routes_answer_503_until_the_model_is_ready(held_load):
    release, _ = held_load
    admission.reset_shutdown()
    app = create_app()
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/health").json()["model"] == "on first use"  # an app made without `serve`
        thread = app.state.model_loader.start(app.state.settings.model, announce=False)
        health = c.get("/api/health")
        assert health.status_code == 200 and health.json()["model"] == "loading"
        assert c.get("/").status_code == 200  # the page itself never needs the model
        for path, body in [
            ("/api/tokenize", {"text": "hi"}),
            ("/api/generate", {"prompt": "hi", "max_new_tokens": 1}),
        ]:
            r = c.post(path, json=body)
            assert r.status_code == 503, (path, r.text)
            assert r.headers["retry-after"] and r.headers["x-model-state"] == "loading"
            assert "loading" in r.json()["error"]
        release.set()
        thread.join(20)
        ready = c.get("/api/health").json()
        assert ready["model"] == "ready" and ready["model_load_s"] >= 0
        assert c.post("/api/tokenize", json={"text": "hi"}).status_code == 200


def test_a_model_that_fails_to_load_is_reported_not_hidden(held_load):
    release, fail = held_load
    fail.append(OSError("weights file is truncated"))
    release.set()
    admission.reset_shutdown()
    app = create_app()
    with TestClient(app, base_url="http://127.0.0.1") as c:
        app.state.model_loader.start(app.state.settings.model, announce=False).join(20)
        health = c.get("/api/health").json()
        assert health["model"] == "error" and "truncated" in health["model_error"]
        r = c.post("/api/tokenize", json={"text": "hi"})
        assert (
            r.status_code == 503
            and "truncated" in r.json()["error"]
            and r.headers["x-model-state"] == "error"
        )


def test_serve_answers_health_and_the_page_before_a_cold_model_is_ready(tmp_path):
    """An empty weights cache makes `serve` dequantize the GGUF: the slow, cold start."""
    t0 = time.perf_counter()
    with Server(env={"PREDICTION_MACHINE_CACHE": str(tmp_path / "cache")}) as server:
        url = server.url
        first = None
        while first is None:
            assert server.proc.poll() is None, server.output()
            assert time.perf_counter() - t0 < 120, "serve never answered"
            try:
                first = httpx.get(url + "/api/health", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.05)
        answered = time.perf_counter() - t0
        assert first.status_code == 200 and first.json()["model"] == "loading", first.text
        page = httpx.get(url + "/", timeout=5)
        assert page.status_code == 200 and "<section" in page.text
        busy = httpx.post(url + "/api/tokenize", json={"text": "hi"}, timeout=5)
        assert busy.status_code == 503 and busy.headers["x-model-state"] == "loading"
        while (state := httpx.get(url + "/api/health", timeout=5).json())["model"] == "loading":
            assert time.perf_counter() - t0 < 180, "the model never became ready"
            time.sleep(0.2)
        ready = time.perf_counter() - t0
        assert state["model"] == "ready", state
        assert httpx.post(url + "/api/tokenize", json={"text": "hi"}, timeout=5).status_code == 200
        print(f"cold serve: health answered after {answered:.1f} s, model ready after {ready:.1f} s")
