"""The one test harness: the model loaded once, the stub model, servers, waiting, event streams.

- `lm` and `client`: the default model (SmolLM2), loaded once per session, and an in-process app on it.
- `stub`: the tiny hostile model of tests/hostile_model.py (real decoder, milliseconds per token).
- `make_app`: a fresh in-process app on the settings a test names (`make_app(model=stub, token=...)`).
- `start_server` / `Server`: the real `prediction-machine serve` in a subprocess; `server_url` shares one.
- `wait_until` and `wait_for_page`: poll a condition, failing the test with what it waited for.
- `read_sse`: a whole event stream, parsed strictly.
- `one_thread`: torch on one thread for a module, put back afterwards.

Fixtures put back what they change; `leaves_process_as_found` checks it after every module.
Tests import the plain helpers by name: `from conftest import make_app, wait_until`.
Browser tests drive Debian's Chromium through Playwright; nothing downloads a browser.
Without CI they skip when Chromium is missing; with CI=true a missing browser fails them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"

# The longest modules run first, so that the two xdist workers (make test: --dist loadfile, one file
# at a time) do not end with one of them alone on a long file while the other waits. Measured on the
# 2-core AMD EPYC with --durations (docs/testing.md); the order only moves files, it skips none.
LONGEST_FIRST = ("test_fuzz.py", "test_wheel.py", "test_class_rating_browser.py", "test_alignment_browser.py",
                 "test_rounds_browser.py", "test_sequences.py", "test_carry_through_browser.py",
                 "test_abuse_checkpoints.py", "test_friction_browser.py", "test_experiments_browser.py",
                 "test_step_story_browser.py", "test_memory_budget.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


# ----------------------------------------------------------------------------- models


@pytest.fixture(scope="session")
def lm():
    """The default model (SmolLM2-135M-Instruct), loaded once: models.load caches it for the whole process."""
    from prediction_machine.model import models

    return models.load()


@pytest.fixture(scope="session")
def client(lm):
    """An in-process client of the real app (same model object as `lm`)."""
    from fastapi.testclient import TestClient

    from prediction_machine.web.app import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        yield c


def make_app(**settings):
    """A fresh app on ServerSettings(**settings), as a new server process would start: a test before
    may have begun a shutdown, which is process-wide."""
    from prediction_machine.web import admission
    from prediction_machine.web.app import create_app
    from prediction_machine.web.settings import ServerSettings

    admission.reset_shutdown()
    return create_app(ServerSettings(**settings))


def signed_in(app, token: str):
    """A TestClient signed in the way a browser is: the token in the address once, then the signed cookie."""
    from fastapi.testclient import TestClient

    c = TestClient(app, base_url="http://127.0.0.1")
    assert c.get("/", params={"token": token}, follow_redirects=False).status_code == 303
    return c


@pytest.fixture(scope="module")
def stub(tmp_path_factory) -> str:
    """The folder of the tiny hostile stub model (tests/hostile_model.py), built in about a second.

    One per module, not per session: tests patch the loaded model's decoder and wrap its forward
    pass, and models.load caches a model by folder, so a fresh folder keeps modules apart.
    """
    from hostile_model import build

    return str(build(tmp_path_factory.mktemp("stub") / "model"))


# ----------------------------------------------------------------------------- process-wide state


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: tiny models train fastest on one thread (on a busy 2-core
    machine more threads mostly wait). The count is process-wide, so it is put back afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


NOT_TEST_STATE = {
    "PYTEST_CURRENT_TEST",  # pytest's own, set for each phase of each test
    "TORCHINDUCTOR_CACHE_DIR",  # torch writes its default cache folder there on its first compile
}


@pytest.fixture(scope="module", autouse=True)
def leaves_process_as_found():
    """Every module leaves torch's thread count and the environment as it found them: a change
    that leaks would silently alter every module that runs after it."""
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    environ = dict(os.environ)
    yield
    if threads is not None:
        assert sys.modules["torch"].get_num_threads() == threads, "torch's thread count was not put back"
    names = (environ.keys() | os.environ.keys()) - NOT_TEST_STATE
    changed = sorted(k for k in names if environ.get(k) != os.environ.get(k))
    assert not changed, f"environment variables not put back: {changed}"


# ----------------------------------------------------------------------------- waiting


def wait_until(check, timeout: float = 120, what: str = "the condition", poll: float = 0.05,
               sleep=time.sleep) -> float:
    """Poll check() until it holds and return the seconds that took; fail the test after `timeout` s.

    The default timeout is generous: the browser tests wait on the real model, on a busy machine.
    """
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        sleep(poll)
    return time.perf_counter() - t0


def wait_for_page(page, condition, timeout: float = 120) -> float:
    """Poll a page until `condition` holds: a JS expression, or a function of the page.

    page.wait_for_function would eval the expression, which the page's CSP forbids, so it is polled
    from Python; page.wait_for_timeout (not time.sleep) lets Playwright handle the page's events.
    """
    if isinstance(condition, str):
        check, what = (lambda: page.evaluate(f"() => Boolean({condition})")), condition
    else:
        check, what = (lambda: condition(page)), "the page"
    return wait_until(check, timeout, what, poll=0.05, sleep=lambda s: page.wait_for_timeout(s * 1000))


# ----------------------------------------------------------------------------- event streams


def _no_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name} in an event")


def read_sse(stream) -> list[tuple[str, dict]]:
    """A whole text/event-stream body (a response, or its bytes) as (event, data) pairs, strictly:
    UTF-8, standard JSON (no NaN or Infinity). Comment lines (": ...") are skipped.

    >>> read_sse(b": hi\n\nevent: step\ndata: {\"id\": 7}\n\n")
    [('step', {'id': 7})]
    """
    raw = stream if isinstance(stream, bytes) else stream.content
    events = []
    for chunk in raw.decode("utf-8").split("\n\n"):
        name, data = "message", []
        for line in chunk.split("\n"):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        if data:
            events.append((name, json.loads("\n".join(data), parse_constant=_no_constant)))
    return events


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`prediction-machine serve` in a subprocess, on a free port; a context manager that stops it.

    Its output goes to a file, read back by output(): a pipe that nobody reads fills up and stalls
    the server. Starting does not wait: tests that watch the start-up poll it themselves, the
    others call start_server, which waits until the model is ready.
    """

    def __init__(self, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="pm-serve-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prediction_machine", "serve", "--port", str(self.port), *args],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, headers: dict | None = None, timeout: float = 60) -> "Server":
        """Wait until /api/health says the model is ready (serve loads it in the background)."""

        def ready() -> bool:
            assert self.proc.poll() is None, f"serve exited with {self.proc.returncode}:\n{self.output()}"
            try:
                r = httpx.get(self.url + "/api/health", headers=headers, timeout=1)
            except httpx.HTTPError:
                return False
            state = r.json().get("model") if r.status_code == 200 else None
            assert state != "error", f"serve could not load its model:\n{self.output()}"
            return state == "ready"

        wait_until(ready, timeout, f"serve to have its model ready at {self.url}", poll=0.2)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send `sig` (a graceful stop by default), kill it if it has not exited within `timeout` s."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.log.close()


def start_server(*args: str, env: dict | None = None, headers: dict | None = None) -> Server:
    """Start `prediction-machine serve *args` and wait until its model is ready."""
    server = Server(*args, env=env)
    try:
        return server.wait_ready(headers)
    except BaseException:
        server.__exit__()
        raise


@pytest.fixture(scope="session")
def server_url():
    """The real server with the default model, shared by the browser tests."""
    with start_server() as server:
        yield server.url


# ----------------------------------------------------------------------------- browsers


@pytest.fixture(scope="session")
def base_url(server_url):
    """pytest-playwright's base_url: the real server, so page.goto('/') works."""
    return server_url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: CI must install Debian's chromium (see .ci/run)")
        pytest.skip("Chromium not found: `sudo apt-get install chromium` to run the browser tests")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"],
    }


def generate_on_page(page, prompt: str | None = None, max_new: int = 6) -> int:
    """Open the page, generate `max_new` tokens (from `prompt`, or the page's own example) and wait
    until all six stages show the newest step; return the number of steps."""
    page.goto("/")
    page.wait_for_selector("#prompt-tokens .token")
    if prompt is not None:
        page.fill("#prompt", prompt)
    page.fill("#max-tokens", str(max_new))
    page.click("#generate")
    page.wait_for_selector("#inference .figure[data-done='1']", timeout=180_000)
    n = page.locator("#timeline .step-chip").count()
    stages = ("tokenizer", "embedding", "transformer", "prediction", "sampling", "generation")
    wait_until(lambda: all(page.inner_text(f"#stage-{s}-step") == f"· Step {n} of {n}" for s in stages),
               what=f"every stage to show step {n} of {n}")
    return n


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def run_in_thread(make_coro):
    """asyncio.run on a fresh thread: after a Playwright test, this thread already owns an event loop."""
    outcome = {}

    def target():
        try:
            outcome["value"] = asyncio.run(make_coro())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
