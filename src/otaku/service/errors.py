"""Every error answer of the API, in one place: a JSON problem with the request id, never an
echo of more than a short excerpt of the input, never a driver's message, and HTTP framing
kept intact (a 500 is an ordinary response on a connection that stays usable)."""

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from otaku.experiments.store import ExperimentConflictError, NoSuchExperimentError
from otaku.pipeline.engine import UnknownAnimeError
from otaku.pipeline.filters import InvalidInputError
from otaku.pipeline.profiles import UnknownUserError
from otaku.pipeline.titles import TitleNotFoundError
from otaku.service.logs import request_id_var
from otaku.service.model import ModelNotReadyError
from otaku.service.users import (
    DatabaseUnavailableError,
    NoSuchRatingError,
    UserExistsError,
    UserIdsExhaustedError,
)

log = logging.getLogger("otaku.service")
NEW_USER_ENDPOINT = "POST /v1/recommendations"
DATABASE_DOWN = "the database is unavailable; try again shortly"
EXCERPT_CHARS = 80
MAX_LISTED_ERRORS = 20


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A JSON error answer carrying the request id."""
    body = {"detail": detail, "request_id": request_id_var.get(), **extra}
    return JSONResponse(status_code=status, content=body, headers=headers)


def excerpt(value: Any) -> Any:
    """A JSON-safe, bounded stand-in for a piece of the request: short scalars as they are,
    non-finite numbers and long text as short strings, containers as a size description."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value if abs(value) < 10**EXCERPT_CHARS else f"{str(value)[:20]}… (a huge number)"
    if isinstance(value, str | bytes):
        text = value if isinstance(value, str) else value.decode("latin-1")
        return (
            text if len(text) <= EXCERPT_CHARS else f"{text[:EXCERPT_CHARS]}… ({len(text)} chars)"
        )
    if isinstance(value, dict):
        return f"an object with {len(value)} key(s)"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} item(s)"
    return excerpt(str(value))


def _json_safe(value: Any) -> Any:
    """``value`` if the JSON encoder takes it as it is, else a bounded excerpt."""
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return excerpt(value)
    return value if len(encoded) <= 4 * EXCERPT_CHARS else excerpt(value)


def _validation_entry(error: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "loc": [part if isinstance(part, int) else excerpt(str(part)) for part in error["loc"]],
        "msg": excerpt(str(error["msg"])),
        "type": error["type"],
    }
    if "input" in error:
        entry["input"] = excerpt(error["input"])
    if error.get("ctx"):
        entry["ctx"] = {str(key): _json_safe(value) for key, value in error["ctx"].items()}
    return entry


def validation_problem(errors: list[Any]) -> JSONResponse:
    """A 422 naming each bad field (at most :data:`MAX_LISTED_ERRORS` of them)."""
    detail = [_validation_entry(error) for error in errors[:MAX_LISTED_ERRORS]]
    more = len(errors) - MAX_LISTED_ERRORS
    body = {"detail": detail, "request_id": request_id_var.get()}
    return JSONResponse(status_code=422, content=body | ({"more_errors": more} if more > 0 else {}))


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (several routes may share a path, and
    Starlette's own 405 names only the first one's)."""
    routes = request.app.router.routes
    allowed = {"OPTIONS"}
    for method in HTTP_METHODS:
        probe = {**request.scope, "method": "GET" if method == "HEAD" else method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.add(method)
    return sorted(allowed)


async def _request_validation(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return validation_problem(list(error.errors()))


async def _invalid_input(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, InvalidInputError)
    return validation_problem(
        [{"loc": error.field.split("."), "msg": error.message, "type": "value_error"}]
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400:  # an undecodable body: a field-level 422 like the rest
        message = f"unreadable body: {excerpt(str(error.detail))}"
        return validation_problem([{"loc": ["body"], "msg": message, "type": "body"}])
    if error.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        detail = f"method {request.method} is not allowed here; allowed: {allow}"
        return problem(405, detail, headers={"Allow": allow})
    return problem(error.status_code, str(error.detail), headers=dict(error.headers or {}))


async def _unknown_user(_: Request, error: Exception) -> JSONResponse:
    return problem(404, str(error), new_user_endpoint=NEW_USER_ENDPOINT)


async def _not_found(_: Request, error: Exception) -> JSONResponse:
    suggestions = error.suggestions if isinstance(error, TitleNotFoundError) else None
    detail = str(error.args[0]) if error.args else "not found"
    return problem(404, detail, suggestions=suggestions)


async def _not_ready(_: Request, error: Exception) -> JSONResponse:
    return problem(503, f"no model is served yet: {error}")


async def _database_down(request: Request, error: Exception) -> JSONResponse:
    # the driver's message names hosts, ports and databases: it goes to the log, not the client
    log.warning("database unavailable on %s: %s", request.url.path, error.__cause__ or error)
    detail = str(error) if isinstance(error, DatabaseUnavailableError) else DATABASE_DOWN
    return problem(503, detail, headers={"Retry-After": "5"})


async def _conflict(_: Request, error: Exception) -> JSONResponse:
    return problem(409, str(error))


async def _no_rating(_: Request, error: Exception) -> JSONResponse:
    return problem(404, str(error))


def install_error_handlers(app: FastAPI) -> None:
    """Map every known failure to its status. Anything else is answered 500 by
    :class:`otaku.service.app.ObserveMiddleware` (with the request id, connection kept)."""
    handlers = {
        RequestValidationError: _request_validation,
        InvalidInputError: _invalid_input,
        StarletteHTTPException: _http_error,
        UnknownUserError: _unknown_user,
        UnknownAnimeError: _not_found,
        TitleNotFoundError: _not_found,
        ModelNotReadyError: _not_ready,
        DatabaseUnavailableError: _database_down,
        OperationalError: _database_down,
        UserExistsError: _conflict,
        UserIdsExhaustedError: _conflict,
        NoSuchRatingError: _no_rating,
        ExperimentConflictError: _conflict,
        NoSuchExperimentError: _no_rating,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
