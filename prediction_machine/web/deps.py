"""What every router needs from the app: settings, slots and the loaded model(s)."""

from __future__ import annotations

from fastapi import Request
from starlette.exceptions import HTTPException

from prediction_machine.model import models
from prediction_machine.model.weights import WeightsError
from prediction_machine.web.settings import ServerSettings


def settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def language_model(request: Request, name: str | None = None) -> models.LanguageModel:
    """A registered model by name (never a filesystem path: the page must not open files)."""
    name = name or request.app.state.settings.model
    if name not in models.registry() and name != request.app.state.settings.model:
        raise HTTPException(422, f"model: unknown model {name!r}; GET /api/models lists them")
    try:
        return models.load(name)
    except WeightsError as e:
        raise HTTPException(503, f"model: {e}") from e
