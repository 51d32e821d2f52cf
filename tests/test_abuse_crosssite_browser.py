"""No cross-site read or trigger of any /api GET, in real Chromium.

A second tiny web server on another local origin (http://localhost:<other port>) serves a
page that fires `<img src>` and `fetch` (with and without CORS) at http://127.0.0.1:<ours>/api/...
A recorder wrapped around our app writes down every request it saw, with its Sec-Fetch-Site
and the status we answered: each foreign request must have reached us and been refused
(403). Our own page, and an address typed in the bar, still get 200.
"""

from __future__ import annotations

import http.server
import threading

import pytest
from conftest import make_app
from hostile_model import LiveServer

ATTACK = """<!doctype html><meta charset="utf-8"><title>Another site</title>
<style>body{font:16px sans-serif;margin:2em} li{margin:.3em 0}</style>
<h1>A page on another origin</h1><p>It tries to reach the Prediction Machine's API at TARGET.</p>
<img alt="img 1" src="TARGET/api/health?from=img"> <img alt="img 2" src="TARGET/api/models?from=img">
<ul id="out"></ul>
<script>
const out = document.getElementById("out");
const say = (t) => { const li = document.createElement("li"); li.textContent = t; out.appendChild(li); };
document.querySelectorAll("img").forEach((img) => {
  img.onload = () => say(img.alt + ": LOADED (bad)");
  img.onerror = () => say(img.alt + ": refused");
});
fetch("TARGET/api/health?from=fetch-no-cors", {mode: "no-cors"})
  .then((r) => say("fetch no-cors: opaque answer, nothing readable (type " + r.type + ")"))
  .catch((e) => say("fetch no-cors: failed " + e));
fetch("TARGET/api/models?from=fetch-cors")
  .then((r) => r.text()).then((t) => say("fetch cors: READ " + t.slice(0, 40) + " (bad)"))
  .catch(() => say("fetch cors: blocked"));
</script>"""


class Recorder:
    """ASGI wrapper: remembers (path?query, Sec-Fetch-Site, status) of every request."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict((k.decode().lower(), v.decode()) for k, v in scope["headers"])
        entry = {
            "url": scope["path"] + "?" + scope["query_string"].decode(),
            "site": headers.get("sec-fetch-site"),
            "status": None,
        }
        self.seen.append(entry)

        async def record(message):
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, record)


@pytest.fixture(scope="module")
def ours(stub):
    app = Recorder(make_app(model=stub))
    with LiveServer(app) as live:
        live.recorder = app
        yield live


@pytest.fixture(scope="module")
def other_origin(ours):
    page = ATTACK.replace("TARGET", ours.url).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/attack.html"
    server.shutdown()


@pytest.mark.browser
def test_cross_site_img_and_fetch_to_the_api_are_refused(page, ours, other_origin, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(other_origin)
    page.wait_for_function("document.querySelectorAll('#out li').length >= 4", timeout=10_000)
    shown = page.locator("#out li").all_text_contents()
    page.screenshot(path=str(artifacts / "abuse-crosssite-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts / "abuse-crosssite-390.png"), full_page=True)
    assert not any("(bad)" in line for line in shown), shown
    foreign = [e for e in ours.recorder.seen if "from=" in e["url"]]
    froms = {e["url"].split("from=")[1] for e in foreign}
    assert {"img", "fetch-no-cors", "fetch-cors"} <= froms, foreign  # the browser did send them: we saw them
    assert all(e["status"] == 403 and e["site"] not in ("same-origin", "none") for e in foreign), foreign

    # Our own page and a typed address are not cross-site.
    before = len(ours.recorder.seen)
    page.goto(ours.url + "/api/health")
    assert '"ok"' in page.content()
    page.goto(ours.url + "/")
    status = page.evaluate("fetch('/api/health').then((r) => r.status)")
    assert status == 200
    mine = [e for e in ours.recorder.seen[before:] if e["url"].startswith("/api/health")]
    assert {e["site"] for e in mine} <= {"none", "same-origin"} and all(e["status"] == 200 for e in mine), (
        mine
    )
