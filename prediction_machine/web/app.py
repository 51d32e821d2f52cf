"""The web app: a thin layer of routers over the Python API, plus the page's static files.

create_app() wires the pieces; nothing here computes model math. Deleting the web folder
leaves the library and the CLI working.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.resources import files

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from prediction_machine.model import models
from prediction_machine.web import validation
from prediction_machine.web.routes import attention, backprop, curriculum, inference
from prediction_machine.web.security import SecurityMiddleware
from prediction_machine.web.settings import ServerSettings
from prediction_machine.web.streaming import Slots

STATIC = files("prediction_machine") / "web" / "static"


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    app = FastAPI(
        title="Prediction Machine",
        version="0.1.0",
        description="JSON API of the guide 'The Magic of Prediction'. Every number is computed live by a real model.",
        docs_url=None,  # the interactive docs pages load scripts from a CDN: not offline, not under our CSP
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.slots = Slots(settings.max_running, settings.max_queued)
    app.add_exception_handler(RequestValidationError, validation.validation_error)
    app.add_exception_handler(HTTPException, validation.http_error)
    validation.install(app)  # error answers in the OpenAPI schema; crashes answered as JSON
    for module in (inference, attention, backprop, curriculum):
        app.include_router(module.router)

    @app.get("/api/health", tags=["server"], summary="Liveness and load")
    async def health() -> dict:  # async: answers even when every worker thread is busy
        return {"ok": True, "generation": app.state.slots.status()}

    @app.get("/api/models", tags=["server"], summary="Models this server can run, and where each comes from")
    def list_models() -> dict:
        loaded = {name: lm.describe() for name, lm in models._loaded.items()}
        return {
            "default": settings.model,
            "models": [
                {"name": e.name, "description": e.description, "source": e.where, "loaded": loaded.get(e.name)}
                for e in models.registry().values()
            ],
        }

    @app.get("/api/source", tags=["server"], summary="The Python source of one function or class of this package")
    def source(name: str = Query(..., max_length=120, pattern=r"^prediction_machine(\.[A-Za-z_][A-Za-z0-9_]*)+$")) -> dict:
        module_name, _, attr = name.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            obj = getattr(module, attr)
            lines, start = inspect.getsourcelines(obj)
        except (ImportError, AttributeError, TypeError, OSError):
            raise HTTPException(404, f"name: no function or class called {name!r} in this package") from None
        path = inspect.getsourcefile(obj) or ""
        rel = path[path.rfind("prediction_machine"):] if "prediction_machine" in path else path
        return {"name": name, "file": rel, "line": start, "source": "".join(lines)}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(SecurityMiddleware, settings=settings)
    return app
