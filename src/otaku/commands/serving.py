"""Serving: the API, the web UI, init and up."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from otaku.commands.common import (
    DataDir,
    Quick,
    app,
    configured_sources,
    console,
    fail,
)
from otaku.commands.data import data_load
from otaku.commands.jobs import retrain
from otaku.config import Settings, get_settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default OTAKU_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OTAKU_API_PORT).")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Serve this bundle directory, not the champion.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes: the model is loaded once and the workers are forked from "
            "it, sharing its arrays (a new champion is loaded once and its workers replace "
            "the old ones).",
        ),
    ] = 1,
) -> None:
    """Start the REST API (docs at /docs) serving the registry's champion model."""
    import os

    import uvicorn

    from otaku.service.logs import configure_logging
    from otaku.service.security import InsecureConfigurationError, check_write_access

    settings = get_settings()
    if bundle is not None:
        os.environ["OTAKU_BUNDLE_PATH"] = str(bundle)  # worker processes read it too
        get_settings.cache_clear()
        settings = get_settings()
    configure_logging(settings.log_json)
    host = host or settings.api_host
    port = port or settings.api_port
    try:
        check_write_access(settings, host)
    except InsecureConfigurationError as error:
        fail(error)
        return
    console.print(f"API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    if workers > 1:
        from otaku.service.forked import serve_forked
        from otaku.service.model import ModelNotReadyError

        try:
            serve_forked(settings, host, port, workers)
        except ModelNotReadyError as error:
            fail(error)
        return
    uvicorn.run(
        "otaku.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )


@app.command()
def ui(
    host: Annotated[str | None, typer.Option(help="Interface (default OTAKU_UI_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OTAKU_UI_PORT).")] = None,
    api_url: Annotated[
        str | None, typer.Option(help="The REST API (default OTAKU_UI_API_URL).")
    ] = None,
) -> None:
    """Start the web UI; it talks only to the REST API."""
    import uvicorn

    from otaku.ui.app import create_ui

    settings = get_settings()
    if api_url:
        settings = settings.model_copy(update={"ui_api_url": api_url})
    host = host or settings.ui_host
    port = port or settings.ui_port
    console.print(f"UI on http://{host}:{port}  (API: {settings.resolved_ui_api_url})")
    uvicorn.run(create_ui(settings), host=host, port=port, log_level="warning")


@app.command()
def init(data: DataDir = None, quick: Quick = False) -> None:
    """Load the data into an empty database (your data, else the demo) and train on it when
    the registry has no champion; does nothing when both are there."""
    from otaku.storage.database import Database
    from otaku.storage.models import Anime
    from otaku.storage.registry import champion_version
    from otaku.storage.repository import Repository

    settings = get_settings()
    directory = data or settings.data_dir
    demo = directory is None
    label = "the demo dataset (simulated users)" if demo else str(directory)
    with Database.from_settings(settings).reading() as session:
        empty = Repository(session).count(Anime) == 0
    if empty:
        console.print(f"empty database: loading {label}")
        data_load(data=directory, demo=demo)
    if champion_version(settings) is None:
        console.print(f"no champion model yet: training on the database ({label})")
        retrain(quick=quick or demo)


@app.command()
def up(
    data: DataDir = None,
    quick: Quick = False,
    port: Annotated[int | None, typer.Option(help="API port (default OTAKU_API_PORT).")] = None,
) -> None:
    """`init` (load an empty database, train when there is no champion), then serve the API
    and the web UI."""
    init(data=data, quick=quick)
    with _ui_alongside(get_settings(), port):
        serve(port=port)


@contextmanager
def _ui_alongside(settings: Settings, api_port: int | None) -> Iterator[None]:
    """The web UI in a thread of this process for as long as the API runs (it dies with the
    process however that ends; in deployments the UI is its own process: ``otaku ui``)."""
    import threading

    import uvicorn

    from otaku.ui.app import create_ui

    if api_port is not None and not settings.ui_api_url:
        settings = settings.model_copy(update={"api_port": api_port})
    config = uvicorn.Config(
        create_ui(settings), host=settings.ui_host, port=settings.ui_port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="otaku-ui", daemon=True)
    thread.start()
    console.print(f"[bold]web UI:[/bold] {settings.ui_url}")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@app.command()
def strategies() -> None:
    """List the strategies the service can rank with and the candidate source kinds."""
    from rich.table import Table

    from otaku.pipeline.sources import SOURCE_KINDS
    from otaku.pipeline.strategies import STRATEGY_TYPES

    table = Table("strategy", "what it does", title="strategies (the API's `strategy`)")
    for name, strategy in STRATEGY_TYPES.items():
        table.add_row(name, strategy.description)
    console.print(table)
    specs = configured_sources(get_settings().sources_file)
    sources = Table("source", "kind", "quota", "cold quota", "params", title="candidate sources")
    for spec in specs:
        sources.add_row(
            spec.name, spec.kind, str(spec.quota), str(spec.cold_quota), str(dict(spec.params))
        )
    console.print(sources)
    console.print(f"source kinds: {', '.join(sorted(SOURCE_KINDS))}")
