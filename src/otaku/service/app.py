"""The FastAPI application: ``create_app(settings)``; the lifespan loads the champion model."""

import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from otaku.config import Settings, get_settings
from otaku.experiments.writer_process import ImpressionPipe
from otaku.jobs.runs import run_summaries
from otaku.service.compat import compat_router
from otaku.service.deps import HolderDep
from otaku.service.errors import install_error_handlers, problem
from otaku.service.experiment_routes import admin_experiments_router, experiments_router
from otaku.service.forked import SupervisedWatcher
from otaku.service.health import DatabaseHealth
from otaku.service.limits import BodyLimitMiddleware
from otaku.service.logs import request_id_var
from otaku.service.metrics import ServiceMetrics
from otaku.service.model import (
    ChampionWatcher,
    ModelHolder,
    ServedModel,
    load_model_to_serve,
)
from otaku.service.online import (
    OnlineExperiments,
    configured_experiment,
    running_arm_gauges,
    start_configured_experiment,
)
from otaku.service.openapi import model_openapi
from otaku.service.routes import admin_router, router
from otaku.service.schemas import Problem
from otaku.service.users import UserDirectory
from otaku.storage.database import Database, create_db_engine, database_url, migrate

log = logging.getLogger("otaku.service")
REQUEST_ID_HEADER = "X-Request-ID"

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


def _route_path(scope: Scope) -> str:
    return str(getattr(scope.get("route"), "path", "unmatched"))


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
        status_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_started
            if message["type"] == "http.response.start":
                status = message["status"]
                status_started = True
                header = (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # answered here, where the request id is still known, as an ordinary response: the
            # client's keep-alive connection stays usable (Starlette's last-resort handler
            # re-raises, and the server then drops the connection)
            log.exception("unhandled error on %s %s", scope["method"], _route_path(scope))
            if status_started:
                raise  # part of a response is out: only closing the connection is honest
            response = problem(500, "internal error; the request id identifies it in the logs")
            await response(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = _route_path(scope)
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
    limit = max(0, app.state.settings.warm_users)  # 0: nothing to warm, done at once
    served.warm_up.start(served.engine, limit, app.state.users.asked.newest(limit))


def _load_in_background(app: FastAPI, settings: Settings) -> threading.Thread:
    def load() -> None:
        try:
            _serve(app, load_model_to_serve(settings))
        except Exception as error:  # the service stays up and says why in /readyz
            log.exception("could not load the model")
            app.state.holder.fail(str(error))

    thread = threading.Thread(target=load, name="otaku-model-loader", daemon=True)
    thread.start()
    return thread


def _migrate(
    database: Database, then: Callable[[], None], retry_seconds: float = 2.0
) -> threading.Thread | None:
    """Bring the schema up to date, then run ``then``, retrying while the database is down
    (the service starts anyway: reads are answered from the model meanwhile)."""

    def run() -> None:
        while True:
            try:
                migrate(database.engine)
                then()
                return
            except OperationalError as error:
                log.warning("database not reachable yet (%s); retrying", error)
                time.sleep(retry_seconds)

    try:  # the usual case: the database is there, so start with the schema in place
        migrate(database.engine)
        then()
        return None
    except OperationalError as error:
        log.warning("database not reachable at start (%s); retrying in the background", error)
    thread = threading.Thread(target=run, name="otaku-migrate", daemon=True)
    thread.start()
    return thread


def _install_operational_routes(app: FastAPI, database: DatabaseHealth) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness, and the database's health")
    def healthz() -> dict[str, str]:
        """The process is up (always 200 while it answers, within about a second);
        ``database`` says whether the database answers (``up``/``down``; also the metric
        ``otaku_database_up``)."""
        return {"status": "alive", "database": "up" if database.up() else "down"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness",
        response_model=None,
        responses={503: {"model": Problem, "description": "No model is loaded (yet)."}},
    )
    def readyz(holder: HolderDep) -> JSONResponse | dict[str, str]:
        """Ready when a model is loaded (503 with the reason until then). The database is not
        part of readiness: reads go on without it, and taking every replica out of service
        for it would turn a partial outage into a full one (see ``/healthz``)."""
        if holder.problem is not None:
            return problem(503, holder.problem)
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


def create_app(
    settings: Settings | None = None,
    served: ServedModel | None = None,
    supervisor: int | None = None,
    impression_pipe: ImpressionPipe | None = None,
) -> FastAPI:
    """The service. Without ``served`` the lifespan loads the configured model in the
    background (``/readyz`` answers 503 until it is loaded). A worker forked by ``otaku serve
    --workers`` passes its ``supervisor``'s pid (the supervisor swaps champions for it) and
    the pipe to the supervisor's impression writer process."""
    settings = settings or get_settings()
    configured = configured_experiment(settings)  # a bad OTAKU_EXPERIMENT fails here, clearly

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher: ChampionWatcher = (
            ChampionWatcher(app.state.holder, settings, lambda new: _serve(app, new))
            if supervisor is None
            else SupervisedWatcher(app.state.holder, settings, supervisor)
        )
        app.state.watcher = watcher
        if served is not None:
            _serve(app, served)
        else:
            _load_in_background(app, settings)
            if settings.bundle_path is None and settings.reload_poll_seconds > 0:
                watcher.start()
        _migrate(database, lambda: start_configured_experiment(database, configured))
        # Requests are many and small: one BLAS thread each beats threads fighting over cores,
        # and a few requests computed at once beat many sliced thin by the GIL.
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        with threadpool_limits(1, user_api="blas"):
            yield
        watcher.stop()
        app.state.online.impressions.close()

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
    app.state.online = OnlineExperiments(database, settings, metrics, impression_pipe)
    metrics.watch_job_runs(lambda: run_summaries(database))
    metrics.watch_experiment(lambda: running_arm_gauges(database, settings.hit_window_days))
    database_health = DatabaseHealth(app.state.users.reachable)
    metrics.watch_database(database_health.up)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    install_error_handlers(app)
    _install_operational_routes(app, database_health)
    app.include_router(router)
    app.include_router(compat_router)
    app.include_router(admin_router)
    app.include_router(experiments_router)
    app.include_router(admin_experiments_router)
    app.openapi = model_openapi(app, app.state.holder)  # type: ignore[method-assign]
    return app
