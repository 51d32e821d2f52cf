"""`prediction-machine serve`: load the model, then run the web app under uvicorn.

Two settings:
- a learner on a laptop (the default): loopback only, no token, Host and Origin checks;
- a classroom: `--host 0.0.0.0 --token T` (or the PREDICTION_MACHINE_TOKEN environment
  variable, which keeps the token out of the process list). Without a token it refuses to
  start and prints a freshly generated one. The token is never printed or logged once the
  server runs; students open http://<machine>:<port>/?token=T once and get a cookie.

On SIGTERM (or Ctrl-C) live streams end with a terminal `error` event, running training
jobs are asked to stop (they checkpoint) and the process exits within a few seconds.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time

from prediction_machine.web.settings import ServerSettings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_ENV = "PREDICTION_MACHINE_TOKEN"
MIN_TOKEN_CHARS = 12
SHUTDOWN_GRACE_S = 5  # after SIGTERM, streams still open after this long are cut
JOB_STOP_GRACE_S = 20  # ... and training jobs get this long to finish their step and checkpoint


class ServeError(Exception):
    """A setting the server cannot start with; the CLI prints it as one line."""


def check_token(host: str, port: int, token: str | None) -> str | None:
    """The token to use, or a ServeError naming one to use (classroom mode needs it)."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ServeError(f"--token must be at least {MIN_TOKEN_CHARS} characters (a guessable token protects nothing)")
    if host not in LOOPBACK and not token:
        suggestion = secrets.token_urlsafe(16)
        raise ServeError(
            f"--host {host} would let other machines reach this server; classroom mode needs an access token. "
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
        print(f"training jobs still running at exit (their last checkpoint stays): {', '.join(left)}", file=sys.stderr)


def make_server(app, settings: ServerSettings):
    """A uvicorn server whose SIGTERM first ends live streams and stops training jobs."""
    import asyncio

    import uvicorn

    from prediction_machine.web import admission

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if not self.should_exit:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    loop.call_soon_threadsafe(admission.begin_shutdown)
                else:
                    admission.begin_shutdown()
                stop_training_jobs(app)
            super().handle_exit(sig, frame)
            # uvicorn re-raises a captured signal after its loop ends, which would kill the
            # process before training jobs finish their checkpoint: we exit normally instead.
            self._captured_signals.clear()

    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S, timeout_keep_alive=5,
    )
    return Server(config)


def serve(args) -> None:
    from prediction_machine.model import models
    from prediction_machine.web.app import create_app

    token = check_token(args.host, args.port, args.token or os.environ.get(TOKEN_ENV) or None)
    allowed = ServerSettings.allowed_hosts
    if args.host not in LOOPBACK:
        allowed = ("*",)  # students reach us by this machine's LAN address; the token guards instead
    settings = ServerSettings(
        host=args.host, port=args.port, model=args.model or models.DEFAULT_MODEL, token=token,
        allowed_hosts=allowed, max_running=args.max_running or ServerSettings.max_running,
        max_queued=args.max_queued or ServerSettings.max_queued,
    )
    t0 = time.perf_counter()
    try:
        lm = models.load(settings.model, precision=getattr(args, "precision", None))
    except Exception as e:  # noqa: BLE001 - a clear one-liner instead of a traceback
        raise ServeError(f"could not load model {settings.model!r}: {e}") from None
    print(f"model {lm.name} ready in {time.perf_counter() - t0:.1f} s ({lm.precision})", file=sys.stderr)
    app = create_app(settings)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    if token:
        print(
            f"Classroom mode: students open http://<this-machine>:{args.port}/?token=<your token> "
            "(the token is not printed here, so it stays out of logs)",
            file=sys.stderr,
        )
    print(f"The Magic of Prediction: http://{shown}:{args.port}/", file=sys.stderr, flush=True)
    make_server(app, settings).run()
    wait_for_training_jobs(app)
