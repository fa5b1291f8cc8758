"""The FastAPI application: ``create_app(settings)``; the lifespan loads the champion model."""

import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from otaku.config import Settings, get_settings
from otaku.jobs.runs import run_summaries
from otaku.pipeline.engine import UnknownAnimeError, UnknownUserError
from otaku.pipeline.filters import InvalidInputError
from otaku.pipeline.titles import TitleNotFoundError
from otaku.service.deps import HolderDep, UsersDep
from otaku.service.logs import request_id_var
from otaku.service.metrics import ServiceMetrics
from otaku.service.model import (
    ChampionWatcher,
    ModelHolder,
    ModelNotReadyError,
    ServedModel,
    load_served_model,
)
from otaku.service.routes import admin_router, compat_router, router
from otaku.service.schemas import Problem
from otaku.service.users import (
    DatabaseUnavailableError,
    NoSuchRatingError,
    UserDirectory,
    UserExistsError,
)
from otaku.storage.database import Database, create_db_engine, database_url, migrate

log = logging.getLogger("otaku.service")
REQUEST_ID_HEADER = "X-Request-ID"
NEW_USER_ENDPOINT = "POST /v1/recommendations"

DESCRIPTION = """
Anime recommendations from a hybrid model (LightFM + synopsis embeddings + LightGBM):

* **known users** — `GET /v1/users/{user_id}/recommendations`
* **new users** (nothing, genre weights, and/or a few ratings) — `POST /v1/recommendations`
* **similar anime** — `GET /v1/anime/{anime_id}/similar`, or by title (typos forgiven)
  `GET /v1/anime/similar?title=`

Every list takes `k` (1-100), `offset`, filters (genres, types, minimum MAL score, start
years; adult titles only with `include_adult=true`) and `strategy` (`default` or the
reference algorithm `seed`). Each item carries its predicted rating and an explanation.
"""


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"detail": detail, "request_id": request_id_var.get(), **extra}
    return JSONResponse(status_code=status, content=body)


def _install_error_handlers(app: FastAPI) -> None:
    async def invalid_input(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, InvalidInputError)
        loc = error.field.split(".")
        detail = [{"loc": loc, "msg": error.message, "type": "value_error"}]
        return JSONResponse(status_code=422, content={"detail": detail})

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 400:  # an undecodable body: a field-level 422 like the rest
            detail = [{"loc": ["body"], "msg": f"unreadable body: {error.detail}", "type": "body"}]
            return JSONResponse(status_code=422, content={"detail": detail})
        return await http_exception_handler(request, error)

    async def unknown_user(_: Request, error: Exception) -> JSONResponse:
        return _problem(404, str(error), new_user_endpoint=NEW_USER_ENDPOINT)

    async def not_found(_: Request, error: Exception) -> JSONResponse:
        suggestions = error.suggestions if isinstance(error, TitleNotFoundError) else None
        return _problem(
            404, str(error.args[0]) if error.args else "not found", suggestions=suggestions
        )

    async def not_ready(_: Request, error: Exception) -> JSONResponse:
        return _problem(503, f"no model is served yet: {error}")

    async def server_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", _route_of(request))
        return _problem(500, "internal error; the request id identifies it in the logs")

    app.add_exception_handler(InvalidInputError, invalid_input)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(UnknownUserError, unknown_user)
    app.add_exception_handler(UnknownAnimeError, not_found)
    app.add_exception_handler(TitleNotFoundError, not_found)
    app.add_exception_handler(ModelNotReadyError, not_ready)

    async def database_down(_: Request, error: Exception) -> JSONResponse:
        return _problem(503, f"writes are unavailable: {error}")

    async def conflict(_: Request, error: Exception) -> JSONResponse:
        return _problem(409, str(error))

    async def no_rating(_: Request, error: Exception) -> JSONResponse:
        return _problem(404, str(error))

    app.add_exception_handler(DatabaseUnavailableError, database_down)
    app.add_exception_handler(UserExistsError, conflict)
    app.add_exception_handler(NoSuchRatingError, no_rating)
    app.add_exception_handler(Exception, server_error)


class ObserveMiddleware:
    """Request ids, request metrics and one structured log line per request (plain ASGI: no
    per-request overhead of ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other ASGI events pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode(), b"")
        request_id = given.decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                header = (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = str(getattr(scope.get("route"), "path", "unmatched"))
        method = scope["method"]
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route, str(status)).observe(elapsed)
        if status >= 400:
            kind = "server" if status >= 500 else "not_found" if status == 404 else "client"
            self.metrics.errors.labels(route, kind).inc()
        log.info(
            "request",
            extra={
                "method": method,
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )


def _serve(app: FastAPI, served: ServedModel) -> None:
    app.state.holder.swap(served)
    app.state.metrics.set_model(served.labels(), served.trained_at, served.loaded_at)
    app.state.metrics.warmed_users.set_function(lambda: served.warm_up.warmed)
    if app.state.settings.warm_users > 0:
        served.warm_up.start(served.engine, app.state.settings.warm_users)


def _load_in_background(app: FastAPI, settings: Settings) -> threading.Thread:
    def load() -> None:
        try:
            _serve(app, load_served_model(settings))
        except Exception as error:  # the service stays up and says why in /readyz
            log.exception("could not load the model")
            app.state.holder.fail(str(error))

    thread = threading.Thread(target=load, name="otaku-model-loader", daemon=True)
    thread.start()
    return thread


def _migrate(database: Database, retry_seconds: float = 2.0) -> threading.Thread | None:
    """Bring the schema up to date, retrying while the database is down (the service starts
    anyway: reads are answered from the model meanwhile)."""

    def run() -> None:
        while True:
            try:
                migrate(database.engine)
                return
            except OperationalError as error:
                log.warning("database not reachable yet (%s); retrying", error)
                time.sleep(retry_seconds)

    try:  # the usual case: the database is there, so start with the schema in place
        migrate(database.engine)
        return None
    except OperationalError as error:
        log.warning("database not reachable at start (%s); retrying in the background", error)
    thread = threading.Thread(target=run, name="otaku-migrate", daemon=True)
    thread.start()
    return thread


def _install_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness")
    def healthz() -> dict[str, str]:
        """The process is up (says nothing about the model)."""
        return {"status": "alive"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness",
        response_model=None,
        responses={503: {"model": Problem, "description": "No model is loaded (yet)."}},
    )
    def readyz(holder: HolderDep, users: UsersDep) -> JSONResponse | dict[str, str]:
        """Ready when a model is loaded and the database answers; 503 with the reason."""
        if holder.problem is not None:
            return _problem(503, holder.problem)
        if not users.reachable():
            return _problem(503, "the database is unreachable (reads still work from the model)")
        return {"status": "ready", "model_version": holder.current().engine.version}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
    )
    def prometheus_metrics(request: Request) -> Response:
        """Prometheus text exposition of the service's metrics."""
        registry = request.app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings | None = None, served: ServedModel | None = None) -> FastAPI:
    """The service. Without ``served`` the lifespan loads the configured model in the
    background (``/readyz`` answers 503 until it is loaded)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = ChampionWatcher(app.state.holder, settings, lambda new: _serve(app, new))
        app.state.watcher = watcher
        if served is not None:
            _serve(app, served)
        else:
            _load_in_background(app, settings)
            if settings.bundle_path is None and settings.reload_poll_seconds > 0:
                watcher.start()
        _migrate(database)
        # Requests are many and small: one BLAS thread each beats threads fighting over cores,
        # and a few requests computed at once beat many sliced thin by the GIL.
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        with threadpool_limits(1, user_api="blas"):
            yield
        watcher.stop()

    app = FastAPI(
        title="My Otaku Friend",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    metrics = ServiceMetrics()
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.holder = ModelHolder()
    database = Database(create_db_engine(database_url(settings)))
    app.state.users = UserDirectory(database)
    metrics.watch_job_runs(lambda: run_summaries(database))
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    _install_error_handlers(app)
    _install_operational_routes(app)
    app.include_router(router)
    app.include_router(compat_router)
    app.include_router(admin_router)
    return app
