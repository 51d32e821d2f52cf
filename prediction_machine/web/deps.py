"""What every router needs from the app: settings, slots and the loaded model(s).

The server's own model is loaded in a background thread (`ModelLoader`, started by
`prediction-machine serve`), so the page and /api/health answer within a second or two
of start-up. Until it is ready, a route that needs it answers 503 with Retry-After and
says the model is loading; health reports "loading", then "ready" (or "error").
"""

from __future__ import annotations

import sys
import threading
import time

from fastapi import Request
from starlette.exceptions import HTTPException

from prediction_machine.model import models
from prediction_machine.model.weights import WeightsError
from prediction_machine.web.settings import ServerSettings

LOADING_RETRY_S = 2  # the Retry-After of a 503 "the model is loading"


class ModelLoader:
    """The server's model, loaded once in a background thread.

    state: "not started" (an app made without `serve`, e.g. in tests: the model is then
    loaded on first use, as before), "loading", "ready" or "error".
    """

    def __init__(self):
        self.state, self.error, self.seconds = "not started", None, None
        self.lock = threading.Lock()

    def start(self, name: str, precision: str | None = None, announce: bool = True) -> threading.Thread:
        with self.lock:
            self.state = "loading"
        thread = threading.Thread(target=self._load, args=(name, precision, announce), name="pm-model-load",
                                  daemon=True)
        thread.start()
        return thread

    def _load(self, name: str, precision: str | None, announce: bool) -> None:
        t0 = time.perf_counter()
        try:
            lm = models.load(name, precision=precision)
        except Exception as e:  # noqa: BLE001 - reported by health and by every route that needs the model
            with self.lock:
                self.state, self.error = "error", f"{type(e).__name__}: {e}"
            print(f"could not load model {name!r}: {e}", file=sys.stderr, flush=True)
            return
        with self.lock:
            self.state, self.seconds = "ready", time.perf_counter() - t0
        if announce:
            print(f"model {lm.name} ready in {self.seconds:.1f} s ({lm.precision})", file=sys.stderr,
                  flush=True)

    def status(self) -> dict:
        out = {"model": self.state if self.state != "not started" else "on first use"}
        if self.error:
            out["model_error"] = self.error
        if self.seconds is not None:
            out["model_load_s"] = round(self.seconds, 2)
        return out

    def check(self) -> None:
        """503 while the model loads (or if loading failed); nothing once it is ready."""
        if self.state == "loading":
            raise HTTPException(
                503, f"the model is still loading; try again in {LOADING_RETRY_S} seconds",
                headers={"Retry-After": str(LOADING_RETRY_S), "X-Model-State": "loading"},
            )
        if self.state == "error":
            raise HTTPException(503, f"model: could not be loaded ({self.error}); restart the server",
                                headers={"X-Model-State": "error"})


def settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def model_names(s: ServerSettings) -> list[str]:
    """Every value a request's `model` may take (the schema's enum): the registered text models, and
    the model the server was started with (which may be a checkpoint folder) under its shown name."""
    names = models.text_models()
    shown = models.shown_name(s.model)
    if shown not in names:
        names.append(shown)
    return names


def language_model(request: Request, name: str | None = None) -> models.LanguageModel:
    """A registered model by name (never a filesystem path: the page must not open files).

    The server's own model answers to its shown name (what GET /api/models calls `default`), and
    that name wins over a registered model of the same name: answers echo it, clients send it back.
    """
    s = request.app.state.settings
    if name is None or name == models.shown_name(s.model):
        name = s.model
        loader = getattr(request.app.state, "model_loader", None)
        if loader is not None:
            loader.check()
    elif models.not_text(name):
        raise HTTPException(422, f"model: {models.not_text(name)}; this route reads text")
    elif name not in models.registry():
        raise HTTPException(422, f"model: unknown model {name!r}; GET /api/models lists them")
    try:
        return models.load(name)
    except WeightsError as e:
        raise HTTPException(503, f"model: {e}") from e
