"""What every router needs from the app: settings, slots and the loaded model(s)."""

from __future__ import annotations

from fastapi import Request
from starlette.exceptions import HTTPException

from prediction_machine.model import models
from prediction_machine.model.weights import WeightsError
from prediction_machine.web.settings import ServerSettings


def settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def model_names(s: ServerSettings) -> list[str]:
    """Every value a request's `model` may take (the schema's enum): the registered models, and the
    model the server was started with (which may be a checkpoint folder) under its shown name."""
    names = list(models.registry())
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
    elif name not in models.registry():
        raise HTTPException(422, f"model: unknown model {name!r}; GET /api/models lists them")
    try:
        return models.load(name)
    except WeightsError as e:
        raise HTTPException(503, f"model: {e}") from e
