"""web/early.py: the page and health answer on serve's socket while PyTorch and the app import."""

import json
import socket
import subprocess
import sys

import pytest

from prediction_machine.web.early import LOOPBACK_HOSTS, EarlyResponder, bind


def ask(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def get(path: str, host: str = "127.0.0.1") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def trickle(sock: socket.socket, every: float):
    """Send one more header byte on `sock` every `every` seconds (a slow loris) until the returned
    event is set or the server closes the connection."""
    import threading

    stop = threading.Event()

    def send():
        while not stop.wait(every):
            try:
                sock.sendall(b"X")
            except OSError:
                return

    threading.Thread(target=send, daemon=True).start()
    return stop


@pytest.fixture
def early():
    sock = bind("127.0.0.1", 0)
    responder = EarlyResponder(sock, LOOPBACK_HOSTS, classroom=False).start()
    yield responder, sock.getsockname()[1]
    responder.stop()
    sock.close()


def test_health_says_loading_and_the_page_is_served_from_disk_with_the_security_headers(early):
    _, port = early
    status, headers, body = ask(port, get("/api/health"))
    assert status == 200 and json.loads(body) == {"ok": True, "model": "loading", "starting": True}
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = ask(port, get("/"))
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<html" in body.lower()
    status, headers, _ = ask(port, get("/static/js/lib/api.js"))
    assert status == 200 and headers["content-type"].startswith("text/javascript")


def test_every_other_request_is_asked_to_retry_the_way_the_page_already_waits_for_the_model(early):
    _, port = early
    body = b'{"prompt": "hi"}'
    head = b"POST /api/generate HTTP/1.1\r\nHost: localhost:1\r\nContent-Type: application/json\r\n"
    status, headers, answer = ask(port, head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert status == 503 and headers["retry-after"] == "1" and headers["x-model-state"] == "loading"
    assert "starting" in json.loads(answer)["error"]  # the same shape as the app's errors


def test_foreign_hosts_and_paths_outside_the_page_are_refused(early):
    _, port = early
    assert ask(port, get("/api/health", host="evil.example"))[0] == 400  # DNS rebinding guard
    assert ask(port, get("/static/../early.py"))[0] == 404  # nothing outside static/
    assert ask(port, get("/static/nope.js"))[0] == 404
    assert ask(port, b"garbage\r\n\r\n")[0] == 400


def test_in_classroom_mode_everything_waits_for_the_app_which_checks_the_token():
    sock = bind("127.0.0.1", 0)
    responder = EarlyResponder(sock, ("*",), classroom=True).start()
    try:
        port = sock.getsockname()[1]
        for path in ("/api/health", "/", "/static/js/lib/api.js"):
            status, headers, _ = ask(port, get(path, host="10.0.0.5:8000"))
            assert status == 503 and headers["retry-after"] == "1"  # only the app can check a token
    finally:
        responder.stop()
        sock.close()


def test_after_stop_a_new_connection_waits_for_the_app_instead_of_being_refused(early):
    responder, port = early
    responder.stop()
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # accepted into the socket's queue: the app answers it once it runs


def test_building_the_cli_parser_imports_no_torch():
    code = ("import sys; from prediction_machine.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_serve_on_a_port_in_use_says_so_plainly():
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "prediction_machine", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    finally:
        taken.close()


def test_a_client_that_trickles_its_headers_neither_blocks_others_nor_the_hand_over(early):
    # The attack: open a connection in serve's first seconds and send a header byte a second.
    # The responder must keep answering others, and stop() (the hand-over to the app) must not
    # wait for that client, whatever it does.
    import threading
    import time

    responder, port = early
    loris = socket.create_connection(("127.0.0.1", port), timeout=5)
    loris.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n")
    quit_trickle = trickle(loris, 0.3)
    try:
        time.sleep(0.5)
        status, _, body = ask(port, get("/api/health"))  # another client, answered meanwhile
        assert status == 200 and json.loads(body)["model"] == "loading"
        started = time.monotonic()
        stopper = threading.Thread(target=responder.stop, daemon=True)
        stopper.start()
        stopper.join(2.0)
        assert not stopper.is_alive(), "stop() waited on a client that never finished its request"
        assert time.monotonic() - started < 1.0
    finally:
        quit_trickle.set()
        loris.close()


def test_a_request_head_has_an_overall_deadline_not_only_a_per_read_one(early):
    import time

    from prediction_machine.web import early as early_module

    _, port = early
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < early_module.REQUEST_DEADLINE_S + 3:
            try:
                s.sendall(b"X")
            except OSError:
                closed = True
                break
            s.settimeout(0.5)
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except OSError:
                closed = True
                break
        assert closed, "a request trickled byte by byte was read for ever"
        assert time.monotonic() - started < early_module.REQUEST_DEADLINE_S + 2


def test_serve_becomes_ready_while_a_client_trickles_a_request_from_its_first_moment():
    # The whole attack on the real `serve`: connect as soon as the port opens and send the
    # request head a byte at a time. The model must still become ready and answer health.
    import time

    from conftest import Server

    with Server("--model", "shakespeare-base") as server:
        deadline = time.monotonic() + 30
        while True:
            try:
                loris = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "serve never opened its port"
                time.sleep(0.02)
        loris.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n")
        quit_trickle = trickle(loris, 1.0)
        try:
            server.wait_ready(timeout=40)
        finally:
            quit_trickle.set()
            loris.close()
