"""`prediction-machine serve`: load the model, then run the web app under uvicorn.

Two settings:
- a learner on a laptop (the default): loopback only, no token, Host and Origin checks;
- a classroom: `--host 0.0.0.0 --token T` (or the PREDICTION_MACHINE_TOKEN environment
  variable, which keeps the token out of the process list). Without a token it refuses to
  start and prints a freshly generated one. The token is never printed or logged once the
  server runs; students open http://<machine>:<port>/?token=T once and get a cookie.

On SIGTERM (or Ctrl-C) live streams end with a terminal `error` event, running training
jobs are asked to stop (they checkpoint), new requests get 503 with Retry-After for
DRAIN_S seconds, then the socket closes and the process exits within a few seconds.

Connections are bounded (a flood of idle or slow sockets cannot lock the room out):
- uvicorn's own settings: `timeout_keep_alive` (keep_alive_s) closes idle kept-alive
  connections, `h11_max_incomplete_event_size` caps a request's header block at 16 KiB;
- GuardedProtocol, our subclass of uvicorn's HTTP protocol, closes a connection at once past
  max_connections (kept under the process's open-file limit) or, in classroom mode, past one
  address's connections_per_ip share, and closes one whose request headers have not all
  arrived within header_timeout_s. (uvicorn's `limit_concurrency` is not used: it still
  accepts every socket, holding a file, and answers 503 only once headers arrive, so idle
  sockets would never be refused.) The body timeout is in web/security.py;
- log lines are rate-limited (RateLimit), so a flood cannot fill the disk through the log.
Every limit is a ServerSettings field; PREDICTION_MACHINE_<FIELD> changes it (settings_from_env).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import resource
import secrets
import sys
import threading
import time
from collections import Counter

from prediction_machine.web.early import LOOPBACK, TOKEN_ENV, allowed_hosts_for
from prediction_machine.web.early import reply as early_reply
from prediction_machine.web.settings import AT_MOST, FROM_FLAGS_ONLY, ServerSettings

MIN_TOKEN_CHARS = 12
SHUTDOWN_GRACE_S = 5  # after SIGTERM, streams still open after this long are cut
JOB_STOP_GRACE_S = 20  # ... and training jobs get this long to finish their step and checkpoint
DRAIN_S = 2.0  # after SIGTERM, new requests get 503 + Retry-After this long before the socket closes
FILE_RESERVE = 64  # open files kept free for the model, the log and the run folders
HEADER_BYTES = 16 * 1024  # the largest request header block (uvicorn's h11_max_incomplete_event_size)
LOG_LINES_PER_MINUTE = 60
ENV_PREFIX = "PREDICTION_MACHINE_"


class ServeError(Exception):
    """A setting the server cannot start with; the CLI prints it as one line."""


def check_token(host: str, port: int, token: str | None) -> str | None:
    """The token to use, or a ServeError naming one to use (classroom mode needs it)."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ServeError(f"--token must be at least {MIN_TOKEN_CHARS} characters "
                         "(a guessable token protects nothing)")
    if host not in LOOPBACK and not token:
        suggestion = secrets.token_urlsafe(16)
        raise ServeError(
            f"--host {host} would let other machines reach this server; "
            "classroom mode needs an access token. "
            f"Re-run with --token {suggestion} (or {TOKEN_ENV}={suggestion}) and give students "
            f"http://<this-machine>:{port}/?token={suggestion}"
        )
    return token


def training_jobs(app) -> list:
    """The running training jobs (web/jobs.py JobManager on app.state), or [] if there are none."""
    manager = getattr(app.state, "training_jobs", None)
    running = getattr(manager, "running", None)
    try:
        return list(running()) if callable(running) else []
    except Exception:  # noqa: BLE001 - shutting down: never let bookkeeping stop the exit
        return []


def stop_training_jobs(app) -> int:
    """Ask every running training job to stop; each checkpoints as it ends. Returns how many."""
    manager = getattr(app.state, "training_jobs", None)
    jobs = training_jobs(app)
    for job in jobs:
        try:
            manager.control(job.id, "stop")
        except Exception:  # noqa: BLE001
            getattr(job, "stop_flag", threading.Event()).set()
    return len(jobs)


def wait_for_training_jobs(app, timeout: float = JOB_STOP_GRACE_S) -> None:
    """After the server loop ends: give stopping jobs time to write their checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(getattr(j, "ended", None) is None for j in training_jobs(app)):
        time.sleep(0.1)
    left = [j.id for j in training_jobs(app) if getattr(j, "ended", None) is None]
    if left:
        print(f"training jobs still running at exit (their last checkpoint stays): {', '.join(left)}",
              file=sys.stderr)


# ----------------------------------------------------------------------------- settings from the environment


def settings_from_env(settings: ServerSettings, env=os.environ) -> ServerSettings:
    """Any limit of ServerSettings from PREDICTION_MACHINE_<FIELD>: PREDICTION_MACHINE_PLACES_PER_IP=40."""
    changes = {}
    for f in dataclasses.fields(settings):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw is None or f.name in FROM_FLAGS_ONLY:
            continue
        default = getattr(settings, f.name)
        try:
            changes[f.name] = type(default)(raw) if isinstance(default, (int, float)) else raw
        except ValueError:
            kind = type(default).__name__
            raise ServeError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a {kind}") from None
        ceiling = AT_MOST.get(f.name, math.inf)
        if isinstance(default, (int, float)) and not 0 < changes[f.name] <= ceiling:  # nan fails too
            limit = "above 0" + (f" and at most {ceiling:g}" if ceiling < math.inf else "")
            raise ServeError(f"{ENV_PREFIX}{f.name.upper()}={raw} is out of range: it must be {limit}")
    return dataclasses.replace(settings, **changes)


def check_teacher_token(settings: ServerSettings) -> None:
    """The teacher's token sees and stops every student's job: as long as the class token, and another."""
    teacher = settings.teacher_token
    if teacher is None:
        return
    name = f"{ENV_PREFIX}TEACHER_TOKEN"
    if len(teacher) < MIN_TOKEN_CHARS:
        raise ServeError(f"{name} must be at least {MIN_TOKEN_CHARS} characters "
                         "(a student who guesses it can see and stop every job)")
    if settings.token is not None and teacher == settings.token:
        raise ServeError(f"{name} must differ from the class token, which every student holds")


def connection_cap(settings: ServerSettings) -> int:
    """max_connections, but never more than the open-file limit allows (each connection is a file)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    files_left = soft - FILE_RESERVE if soft > 0 else settings.max_connections
    return max(8, min(settings.max_connections, files_left))


# ----------------------------------------------------------------------------- bounded connections and logs


class RateLimit(logging.Filter):
    """At most `per_minute` log lines a minute; the next line after a quiet spell says how many were cut."""

    def __init__(self, per_minute: int = LOG_LINES_PER_MINUTE):
        super().__init__()
        self.per_minute, self.window, self.count, self.dropped = per_minute, 0.0, 0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.window >= 60:
            self.window, self.count = now, 0
        self.count += 1
        if self.count > self.per_minute:
            self.dropped += 1
            return False
        if self.dropped:
            record.msg = f"({self.dropped} log lines dropped by the rate limit) {record.msg}"
            self.dropped = 0
        return True


def limit_logs(per_minute: int = LOG_LINES_PER_MINUTE) -> RateLimit:
    """Put one shared rate limit on every handler that writes our, uvicorn's and asyncio's lines."""
    limit = RateLimit(per_minute)
    root = logging.getLogger()
    if not root.handlers:  # asyncio's "Too many open files" would otherwise go to logging's last resort
        root.addHandler(logging.StreamHandler())
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(limit)
    return limit


class Guard:
    """Connection counts shared by every connection of one server."""

    def __init__(self, settings: ServerSettings):
        self.cap = connection_cap(settings)
        self.per_ip = settings.connections_per_ip if settings.token else None
        self.header_timeout_s = settings.header_timeout_s
        self.open = 0
        self.by_ip: Counter = Counter()
        self.refused: Counter = Counter()  # why connections were closed early, for tests and the log
        self.log = logging.getLogger("prediction_machine.web")

    def admit(self, ip: str) -> bool:
        if self.open >= self.cap or (self.per_ip is not None and self.by_ip[ip] >= self.per_ip):
            reason = "total" if self.open >= self.cap else "per-ip"
            self.refused[reason] += 1
            self.log.warning("connection from %s closed: %d open (limit %d total, %s per address)", ip,
                             self.open, self.cap, self.per_ip or "no limit")
            return False
        self.open += 1
        self.by_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self.open -= 1
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]


def guarded_protocol(guard: Guard):
    """uvicorn's HTTP protocol class, with the connection cap and the header timeout of `guard`."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class GuardedProtocol(AutoHTTPProtocol):
        pm_ip = None

        def connection_made(self, transport) -> None:
            ip = (transport.get_extra_info("peername") or ("?",))[0]
            if not guard.admit(ip):
                transport.abort()  # closed before uvicorn sees it: the file is freed at once
                return
            self.pm_ip = ip
            super().connection_made(transport)
            self._deadline(None)

        def connection_lost(self, exc) -> None:
            if self.pm_ip is None:
                return  # refused in connection_made: uvicorn never knew it
            guard.release(self.pm_ip)
            self.pm_ip = None
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            """uvicorn's answer to a request its parser refuses (a malformed Content-Length, a bad
            request line): ours instead of its plain text, JSON with every security header."""
            detail = f"the request could not be read ({msg.rstrip('.').lower()})"
            self.transport.write(early_reply(400, detail))
            self.transport.close()

        def on_response_complete(self) -> None:
            done = self.cycle
            super().on_response_complete()
            self._deadline(done)

        def _deadline(self, cycle) -> None:
            """Close the connection if no new request's headers have arrived by then."""
            self.loop.call_later(guard.header_timeout_s, self._check, cycle)

        def _check(self, cycle) -> None:
            idle = self.cycle is cycle and (cycle is None or cycle.response_complete)
            if idle and not self.transport.is_closing():
                guard.refused["header-timeout"] += 1
                self.transport.close()

    return GuardedProtocol


# ----------------------------------------------------------------------------- the server


def make_server(app, settings: ServerSettings):
    """A uvicorn server with bounded connections, whose SIGTERM first ends live streams and stops training."""
    import asyncio

    import uvicorn

    from prediction_machine.web import admission

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if admission.shutting_down() or self.should_exit:
                return super().handle_exit(sig, frame)  # a second signal: go now
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            stop_training_jobs(app)
            if loop is None:
                admission.begin_shutdown()
                return self._close(sig, frame)
            loop.call_soon_threadsafe(admission.begin_shutdown)  # streams end; new requests get 503
            loop.call_soon_threadsafe(loop.call_later, DRAIN_S, self._close, sig, frame)

        def _close(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises a captured signal after its loop ends, which would kill the
            # process before training jobs finish their checkpoint: we exit normally instead.
            self._captured_signals.clear()

    guard = Guard(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S, timeout_keep_alive=settings.keep_alive_s,
        h11_max_incomplete_event_size=HEADER_BYTES, http=guarded_protocol(guard),
    )
    server = Server(config)
    server.guard = guard
    limit_logs()
    return server


def print_limits(settings: ServerSettings) -> None:
    """Where runs go, and every limit on them and on connections (a crash's leftovers removed first)."""
    from prediction_machine.model import models
    from prediction_machine.training.curriculum import checkpoint, runs

    folder = runs.runs_dir()
    removed = checkpoint.clean_leftovers(folder)
    s = settings
    print(f"runs folder: {models.shown_path(folder)} (per person: {s.run_quota_mb:g} MB, runs older than "
          f"{s.run_max_age_days:g} days removed; "
          f"{removed} leftover temporary file{'' if removed == 1 else 's'} removed)",
          file=sys.stderr)
    share = f", {s.connections_per_ip} per address" if s.token else ""
    print(f"limits: {connection_cap(s)} connections{share}; headers within {s.header_timeout_s:g} s, "
          f"bodies within {s.body_timeout_s:g} s, idle kept-alive closed after {s.keep_alive_s:g} s; "
          f"paused training stopped after {s.pause_timeout_s:g} s"
          + (f"; {s.places_per_ip} generation places per address" if s.token else "")
          + f" (change any with {ENV_PREFIX}<SETTING>)", file=sys.stderr)


def announce_memory(app, settings: ServerSettings) -> threading.Thread:
    """Once the model is ready: make its batcher under --max-memory, print the worst case it was sized for."""

    def wait() -> None:
        from prediction_machine.engine import server_batcher
        from prediction_machine.model import models

        loader = app.state.model_loader
        while loader.state == "loading":
            time.sleep(0.2)
        if loader.state == "ready":
            lm = models.load(settings.model)  # already loaded: the same object the routes use
            b = server_batcher.batcher_for(lm.decoder, settings.max_running, limits=settings)
            print(b.plan.describe(), file=sys.stderr, flush=True)

    thread = threading.Thread(target=wait, name="pm-memory-plan", daemon=True)
    thread.start()
    return thread


def serve(args, early=None) -> None:
    """Run the server. `early` (web/early.EarlyResponder), if given, already holds the bound socket
    and answers on it while this imports; the app takes the socket over once it is ready."""
    from prediction_machine.model import models
    from prediction_machine.web.app import create_app

    token = check_token(args.host, args.port, args.token or os.environ.get(TOKEN_ENV) or None)
    allowed = allowed_hosts_for(args.host)
    settings = settings_from_env(ServerSettings(
        host=args.host, port=args.port, model=args.model or models.DEFAULT_MODEL, token=token,
        allowed_hosts=allowed, max_running=args.max_running or ServerSettings.max_running,
        max_queued=args.max_queued or ServerSettings.max_queued,
        max_memory_mb=getattr(args, "max_memory", None) or ServerSettings.max_memory_mb,
    ))
    check_teacher_token(settings)
    if models.not_text(settings.model):
        raise ServeError(f"--model {models.not_text(settings.model)}; the page's model reads text")
    known = settings.model == models.DEFAULT_MODEL or settings.model in models.registry()
    if not known and not os.path.exists(os.path.expanduser(settings.model)):
        raise ServeError(f"could not load model {settings.model!r}: "
                         "no such registered model or checkpoint folder")
    app = create_app(settings)
    if getattr(args, "reprobe", False):  # forget the weight layouts measured here: the load probes again
        from prediction_machine.engine import layout_probe

        print(f"reprobe: {layout_probe.forget()} stored layout choice(s) forgotten", file=sys.stderr)
    # The page and /api/health answer at once; routes that need the model say 503 "loading" until it is ready.
    precision = getattr(args, "precision", None) or settings.precision
    app.state.model_loader.start(settings.model, precision=precision)
    print(f"model {settings.model} loading in the background", file=sys.stderr)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    if token:
        print(
            f"Classroom mode: students open http://<this-machine>:{args.port}/?token=<your token> "
            "(the token is not printed here, so it stays out of logs)",
            file=sys.stderr,
        )
    print_limits(settings)
    announce_memory(app, settings)
    print(f"The Magic of Prediction: http://{shown}:{args.port}/", file=sys.stderr, flush=True)
    server = make_server(app, settings)
    if early is None:
        server.run()
    else:
        early.stop()  # from here on the app answers, on the same socket: no connection is refused in between
        server.run(sockets=[early.sock])
    wait_for_training_jobs(app)
