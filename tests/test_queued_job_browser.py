"""A classroom's training job that waits for a place says so on the page, with its place in line.

One place (max_training_jobs=1): another student's job holds it, so this page's pre-training waits,
and the status line gives its position; when the other job stops, this one starts by itself.
"""

from __future__ import annotations

import httpx
from conftest import make_app, wait_until
from hostile_model import LiveServer

TOKEN = "queued-job-browser-token-7f3c"


def cookie_of(url: str) -> str:
    with httpx.Client(base_url=url, timeout=20) as c:
        r = c.get("/", params={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return "; ".join(f"{k}={v}" for k, v in r.cookies.items())


def test_a_queued_job_shows_its_place_and_starts_when_a_place_frees(stub, page, tmp_path, monkeypatch,
                                                                   artifacts):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",), max_training_jobs=1)
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        other = {"cookie": cookie_of(live.url)}
        body = {"steps": 300, "corpus_chars": 10_000, "tokenizer": "char", "batch_size": 1, "context": 16}
        r = http.post("/api/curriculum/pretrain", json=body, headers=other)
        assert r.status_code == 200, r.text
        held = r.json()["job"]["id"]

        page.set_default_timeout(60_000)
        page.goto(f"{live.url}/?token={TOKEN}#curriculum")
        page.wait_for_selector("#curriculum [data-ready='curriculum']")
        page.fill("#cur-steps", "20")
        page.locator("#cur-steps").dispatch_event("change")
        page.click("[data-action='start-pretrain']")
        page.wait_for_function(
            "() => document.querySelector('#cur-pretrain .status').textContent.includes('number 1 in line')")
        status = page.locator("#cur-pretrain .status").inner_text()
        assert "trains 1 at a time" in status, status
        page.locator("#cur-pretrain").screenshot(path=str(artifacts / "curriculum-queued.png"))

        r = http.post(f"/api/curriculum/jobs/{held}/stop", headers=other)
        assert r.status_code == 200, r.text
        wait_until(lambda: "in line" not in page.locator("#cur-pretrain .status").inner_text(), 60,
                   "the waiting job to start once the place was freed")
        page.wait_for_selector("#cur-pretrain .samples li, #cur-pretrain .merges li")
