"""The web app: a thin layer of routers over the Python API, plus the page's static files.

create_app() wires the pieces; nothing here computes model math. Deleting the web folder
leaves the library and the CLI working.
"""

from __future__ import annotations

import dataclasses
from importlib.resources import files

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from prediction_machine import limits
from prediction_machine.engine import priority
from prediction_machine.model import models
from prediction_machine.web import code_links, validation
from prediction_machine.web.admission import Slots
from prediction_machine.web.deps import ModelLoader
from prediction_machine.web.routes import (
    alignment,
    attention,
    backprop,
    circuits,
    class_rating,
    classroom,
    curriculum,
    experiments,
    inference,
    inside,
    makes_up,
    recordings,
    sequences,
    what_if,
)
from prediction_machine.web.security import SecurityMiddleware
from prediction_machine.web.settings import ServerSettings

STATIC = files("prediction_machine") / "web" / "static"


SECRET_SETTINGS = ("token", "teacher_token")  # never answered; anyone may read the rest


def public_settings(settings: ServerSettings) -> dict:
    """What GET /api/settings answers: every ServerSettings field but the tokens, and the sampling
    defaults the page starts from (prediction_machine/limits.py)."""
    server = {k: v for k, v in dataclasses.asdict(settings).items() if k not in SECRET_SETTINGS}
    server["model"] = models.shown_name(settings.model)  # a checkpoint folder: never the server's own path
    sampling = {"temperature": limits.TEMPERATURE, "max_temperature": limits.MAX_TEMPERATURE,
                "greedy_below": limits.GREEDY_BELOW}
    return {"server": server, "sampling": sampling}


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    app = FastAPI(
        title="Prediction Machine",
        version="0.1.0",
        description="JSON API of the guide 'The Magic of Prediction'. "
                    "Every number is computed live by a real model.",
        docs_url=None,  # the interactive docs pages load scripts from a CDN: not offline, not under our CSP
        redoc_url=None,
    )
    app.state.settings = settings
    # classroom mode: each address may hold at most places_per_ip of the generation places
    app.state.slots = Slots(settings.max_running, settings.max_queued,
                            per_ip=settings.places_per_ip if settings.token else None)
    # The process's one gate (every batcher reports to it): heavy answers take at most this share
    # of the time while generations decode.
    priority.GATE.share = settings.heavy_share
    app.state.model_loader = ModelLoader()  # `serve` starts it; until then the model loads on first use
    app.add_exception_handler(RequestValidationError, validation.validation_error)
    app.add_exception_handler(HTTPException, validation.http_error)
    validation.install(app)  # error answers in the OpenAPI schema; crashes answered as JSON
    for module in (inference, attention, backprop, curriculum, alignment, sequences, experiments, what_if):
        app.include_router(module.router)
    app.include_router(inside.router)  # what fine-tuning changed inside; where a text was learned
    app.include_router(circuits.router)  # snapshots of pre-training runs: circuits forming
    app.include_router(recordings.router)  # recorded sessions: replayed when the server cannot keep up
    app.include_router(makes_up.router)  # why it makes things up: calibration, context, temperature
    app.include_router(classroom.router)  # the class together: answers 404 unless serve has a token
    app.include_router(classroom.page_router)
    app.include_router(class_rating.router)  # the class rating round and its one DPO run

    @app.get("/api/health", tags=["server"], summary="Liveness and load")
    async def health() -> dict:  # async: answers even when every worker thread is busy
        from prediction_machine.engine import layout_probe  # the weight layouts measured and chosen

        layouts = {lm.shown_name: layout_probe.status(lm.decoder)  # loaded models on the fused path
                   for lm in list(models._loaded.values()) if hasattr(lm.decoder, "choice")}
        return {"ok": True, **app.state.model_loader.status(), "generation": app.state.slots.status(),
                "layouts": layouts}

    @app.get("/api/models", tags=["server"], summary="Models this server can run, and where each comes from")
    def list_models() -> dict:
        return {"default": models.shown_name(settings.model), "models": models.catalogue()}

    @app.get("/api/settings", tags=["server"],
             summary="The limits this server was started with, and the sampling defaults")
    def settings_route() -> dict:
        return public_settings(settings)

    @app.get("/api/source", tags=["server"], summary="The source behind one of the page's 'view code' links")
    def source(name: str = Query(..., max_length=200,
                                 description="a name listed in web/code_links.py")) -> dict:
        found = code_links.find(name)  # parses the file; imports nothing
        if found is None:
            raise HTTPException(404, f"name: {name!r} is not one of the page's 'view code' links")
        return {"name": found.name, "file": found.file, "line": found.line, "source": found.source,
                "note": found.note}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(SecurityMiddleware, settings=settings)
    return app
