"""Input validation shared by every router: strict models and one shape for every error.

Every error the API returns looks like {"error": "<field>: <what is wrong>", "errors": [...]},
so the page can show it as text and a script can read the field that failed.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException


class Strict(BaseModel):
    """A request body: unknown fields are refused, and NaN or Infinity never get in."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=False)


def _field(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _safe(value) -> str:
    """Repr an input for an error message: short, and never anything a page could run."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for e in exc.errors():
        field = _field(e.get("loc", ()))
        msg = e.get("msg", "invalid value")
        if e.get("type") == "json_invalid":
            field, msg = "body", "the request body is not valid JSON (UTF-8)"
        errors.append({"field": field, "message": msg})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return JSONResponse(
        {"error": f"{first['field']}: {first['message']}", "errors": errors},
        status_code=422,
    )


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def unprocessable(field: str, message: str) -> StarletteHTTPException:
    """A 422 for a check the schema cannot express (e.g. a prompt that tokenizes too long)."""
    return StarletteHTTPException(422, f"{field}: {message}")


def no_surrogates(text: str) -> str:
    """Refuse lone UTF-16 surrogates (valid JSON escapes, but not text): the tokenizer needs real Unicode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"contains invalid Unicode (a lone surrogate at character {e.start})") from None
    return text
