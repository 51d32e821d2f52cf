"""Input validation shared by every router: strict models and one shape for every error.

Every error the API returns looks like {"error": "<field>: <what is wrong>", "errors": [...]},
so the page can show it as text and a script can read the field that failed.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from typing import Annotated

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from prediction_machine.limits import MAX_TEMPERATURE
from prediction_machine.web.deps import model_names


class Strict(BaseModel):
    """A request body: unknown fields are refused, and NaN or Infinity never get in."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=False)

    @model_validator(mode="before")
    @classmethod
    def _json_types(cls, data):
        """Numbers, booleans and lists exactly as JSON Schema types them, whatever `strict` says.

        JSON Schema counts 1.0 as an integer, so the API does too (1.0 -> 1). Lax pydantic would
        also take "3" for a number, or "yes" and 1 for a boolean, and strict pydantic refuses
        1.0 for an integer: both would make the schema lie, so this decides instead, per field.
        """
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key in out:
                out[key] = _json_typed(field.annotation, out[key])
        return out


class _NotThatType:
    """Stands in for a value of the wrong JSON type, so pydantic reports it on its own field."""

    def __repr__(self) -> str:
        return "<a value of the wrong JSON type>"


def _strip(t):
    while typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    return t


def _json_typed(annotation, value):
    t = _strip(annotation)
    origin, args = typing.get_origin(t), [_strip(a) for a in typing.get_args(t)]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return value
        kinds = [a for a in args if a is not type(None)]
        return _json_typed(kinds[0], value) if len(kinds) == 1 else value
    if t is bool:
        return value if isinstance(value, bool) else _NotThatType()
    if t is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else _NotThatType()
    if t is float:
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else _NotThatType()
    if origin is list and args and isinstance(value, list):
        return [_json_typed(args[0], v) for v in value]
    return value


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
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        # Starlette's `Allow` names only the methods of the first route that matched the path; a path
        # served by several routes (GET and DELETE /sessions/{key}) must list them all.
        allowed = allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method the schema documents for this request's path, and GET for the page itself.

    HEAD is not listed: the API's routes do not serve it (only the static files do), and `Allow`
    names what a client can really use. The early responder (web/early.py) answers HEAD the same way.
    """
    methods: set[str] = set()
    path = request.scope.get("path", "")
    for template, operations in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(path):
            methods |= {m.upper() for m in operations if m.upper() in _ORDER}
    if path == "/":  # the page: a route outside the schema
        methods.add("GET")
    return sorted(methods, key=_ORDER.index)


_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def json_problem(body: bytes) -> tuple[int, str] | None:
    """What is wrong with a request body as JSON, as (status, message), or None when it is fine.

    Example: b'{"a": }' -> (400, "body: not valid JSON at line 1 column 7 (Expecting value)");
    b'{"a": 1, "a": 2}' -> (422, "body: the key 'a' appears twice"), where plain JSON parsing
    would silently keep the last one.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return 400, f"body: not valid UTF-8 at byte {e.start}"
    try:
        json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as e:
        return 422, f"body: the key {_safe(e.args[0])} appears twice"
    except json.JSONDecodeError as e:
        return 400, f"body: not valid JSON at line {e.lineno} column {e.colno} ({e.msg})"
    except RecursionError:
        return 400, "body: not valid JSON here (nested too deeply)"
    except ValueError:  # Python's own bound on the digits of an integer, raised while parsing one
        return 400, f"body: a number in the JSON has more than {sys.get_int_max_str_digits()} digits"
    return None


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


# ----------------------------------------------------------------------------- the schema tells the truth

MODEL_NAME_MARK = "x-model-name"  # replaced, in the served schema, by the enum of this server's model names
ModelName = Annotated[
    str | None,
    Field(default=None, max_length=100, json_schema_extra={MODEL_NAME_MARK: True},
          description="a name from GET /api/models (default: the server's model)"),
]

# Every API's temperature: 0 (greedy) up to the one maximum the CLI accepts too.
Temperature = Annotated[float, Field(ge=0, le=MAX_TEMPERATURE, strict=True,
                                     description="0 = the likeliest, always")]

LIMIT_MARK = "x-limit"  # the ServerSettings field that bounds a value; the served schema states its value


def up_to(setting: str) -> dict:
    """A field's json_schema_extra: at most this server's `setting` (a number, or characters, or items).

    The bound is read from the app's settings at request time (within_limits) and written into the
    served schema (install), so a limit changed when `serve` starts is the one enforced and documented.
    """
    return {LIMIT_MARK: setting}


def within_limits(req: BaseModel, settings) -> None:
    """A 422 naming the field, in the shape of every validation error, for a value past its up_to limit."""
    for name, field in type(req).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        value = getattr(req, name)
        if LIMIT_MARK not in extra or value is None:
            continue
        limit = getattr(settings, extra[LIMIT_MARK])
        if isinstance(value, str) and len(value) > limit:
            message = f"String should have at most {limit} characters"
        elif isinstance(value, list) and len(value) > limit:
            message = f"List should have at most {limit} items"
        elif isinstance(value, (int, float)) and value > limit:
            message = f"Input should be less than or equal to {limit}"
        else:
            continue
        where = ("body", field.alias or name)
        raise RequestValidationError([{"loc": where, "msg": message, "type": "limit"}])


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "<field>: <what is wrong>, fit to show as text"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# Answers any route may give before or beside its own logic (security middleware, capacity).
COMMON_ERRORS = {
    "400": "the Host header is not one this server answers to, or the body could not be parsed",
    "401": "classroom mode: the access token is missing or wrong",
    "403": "a cross-origin or cross-site request",
    "404": "no such route, file or named object",
    "408": "the request body did not arrive within the body timeout",
    "413": "the request body is over the size limit",
    "415": "the request body is not application/json",
    "422": "a field is invalid; `error` names it and states the limit",
    "429": "busy, or this client already has a generation running; see Retry-After",
    "503": "the model is unavailable or the server is shutting down; see Retry-After",
}


def install(app) -> None:
    """Make the OpenAPI schema describe our real error answers, and turn crashes into JSON.

    FastAPI documents 422 as its own {"detail": [...]} shape; ours is {"error", "errors"}.
    Every operation also lists the answers the middleware can give, so a client generated
    from the schema (or a schema fuzzer) knows them. A `model` field (ModelName) is the enum of
    this server's model names, a field marked up_to states this server's limit, and the answers
    that create a playground session or a training job link to the routes that take its id.
    """
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                for code, text in COMMON_ERRORS.items():
                    entry = responses.setdefault(code, {"description": text})
                    entry["content"] = _ERROR_REF
        _model_enums(schema, model_names(app.state.settings))
        _limits(schema, app.state.settings)
        _links(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
    app.add_exception_handler(Exception, internal_error)


def _model_enums(node, names: list[str]) -> None:
    """Every field marked by ModelName: a string from `names`, or null (the server's model)."""
    if isinstance(node, dict):
        if node.pop(MODEL_NAME_MARK, False):
            node.pop("anyOf", None)
            node.pop("type", None)
            node["anyOf"] = [{"type": "string", "enum": list(names)}, {"type": "null"}]
        for value in node.values():
            _model_enums(value, names)
    elif isinstance(node, list):
        for value in node:
            _model_enums(value, names)


def _limits(node, settings) -> None:
    """Every field marked by up_to: its bound, as this server was started with it."""
    if isinstance(node, dict):
        setting = node.pop(LIMIT_MARK, None)
        if setting is not None:
            # An optional field (anyOf: [its type, null]) bounds its own type: on the union, `maximum`
            # would bind no list or string, and a fuzzer would send longer ones the server refuses.
            for target in [n for n in node.get("anyOf", []) if n.get("type") not in (None, "null")] or [node]:
                key = {"string": "maxLength", "array": "maxItems"}.get(target.get("type"), "maximum")
                target[key] = getattr(settings, setting)
        for value in node.values():
            _limits(value, settings)
    elif isinstance(node, list):
        for value in node:
            _limits(value, settings)


# An answer that creates something -> the routes that take its id: (path, method, status) ->
# (path parameter, where the answer holds the id, the path prefix of the operations that use it).
# OpenAPI links, so a client (and schemathesis' stateful phase) can follow a created id.
CREATES = {
    ("/api/backprop/sessions", "post", "201"): ("key", "$response.body#/id", "/api/backprop/sessions/{key}"),
    **{(f"/api/curriculum/{kind}", "post", "200"):
       ("job_id", "$response.body#/job/id", "/api/curriculum/jobs/{job_id}")
       for kind in ("pretrain", "finetune", "lora")},
}


def _links(schema: dict) -> None:
    paths = schema.get("paths", {})
    for (path, method, status), (param, expression, prefix) in CREATES.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        links = response.setdefault("links", {})
        for target, operations in paths.items():
            if not (target == prefix or target.startswith(prefix + "/")):
                continue
            for op in operations.values():
                if "operationId" in op and any(p.get("name") == param for p in op.get("parameters", [])):
                    links[op["operationId"]] = {"operationId": op["operationId"],
                                                "parameters": {param: expression}}


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not bad input: still a JSON answer, never the exception text (it may hold internals)."""
    return JSONResponse({"error": "internal error: the server hit a bug; it has been logged"},
                        status_code=500)
