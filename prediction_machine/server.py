"""`prediction-machine serve`: load the model, then run the web app under uvicorn."""

from __future__ import annotations

import secrets
import sys
import time

from .config import ServerSettings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(args) -> None:
    import uvicorn

    from . import models
    from .cli import UsageError
    from .web.app import create_app

    token = args.token
    allowed = ServerSettings.allowed_hosts
    if args.host not in LOOPBACK:
        if not token:
            suggestion = secrets.token_urlsafe(16)
            raise UsageError(
                f"--host {args.host} would let other machines reach this server; classroom mode needs an access "
                f"token. Re-run with --token {suggestion} and give students http://<this-machine>:{args.port}/?token={suggestion}"
            )
        allowed = ("*",)
    settings = ServerSettings(
        host=args.host, port=args.port, model=args.model or models.DEFAULT_MODEL, token=token,
        allowed_hosts=allowed, max_running=args.max_running, max_queued=args.max_queued,
    )
    t0 = time.perf_counter()
    try:
        lm = models.load(settings.model)
    except Exception as e:  # noqa: BLE001 - a clear one-liner instead of a traceback
        raise UsageError(f"could not load model {settings.model!r}: {e}") from None
    print(f"model {lm.name} ready in {time.perf_counter() - t0:.1f} s ({lm.precision})", file=sys.stderr)
    app = create_app(settings)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"The Magic of Prediction: http://{shown}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
