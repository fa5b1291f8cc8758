"""The `otaku` command line."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from otaku.config import Settings, get_settings
from otaku.data.fetch import FetchError, fetch_dataset
from otaku.data.files import DataSources, MissingDataError
from otaku.data.validation import DataValidationError
from otaku.models.lightfm import LightFMConfig
from otaku.models.rating import RatingModelConfig
from otaku.pipeline.components import ComponentsConfig
from otaku.pipeline.ranker import RankerConfig
from otaku.pipeline.training import TrainConfig

app = typer.Typer(help="My Otaku Friend: a hybrid anime recommender.", no_args_is_help=True)
data_app = typer.Typer(help="Get and check datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Directory with anime.csv, anime_with_synopsis.csv, rating_complete.csv."
    ),
]
AnimeFile = Annotated[Path | None, typer.Option("--anime", help="anime.csv (plain or .gz).")]
SynopsisFile = Annotated[
    Path | None, typer.Option("--synopses", help="anime_with_synopsis.csv or synopsis.csv.")
]
RatingFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--ratings", help="rating_complete.csv or animelist.csv; repeat for several files."
    ),
]
Demo = Annotated[
    bool,
    typer.Option("--demo", help="The real MAL catalog with SIMULATED users (no files needed)."),
]
DemoUsers = Annotated[int, typer.Option(help="Simulated users in the demo dataset.")]
Quick = Annotated[
    bool,
    typer.Option(
        "--quick",
        help="Small models (10 LightFM epochs, 300 LightGBM rounds): for demos and tests.",
    ),
]
NoText = Annotated[bool, typer.Option("--no-text", help="Skip synopsis embeddings (zeros).")]


def _sources(
    data: Path | None,
    anime: Path | None,
    synopses: Path | None,
    ratings: list[Path] | None,
    demo: bool,
    demo_users: int,
    seed: int,
) -> DataSources:
    if demo:
        return DataSources(demo_users=demo_users, seed=seed)
    if anime is not None:
        return DataSources(anime, synopses, tuple(ratings or ()), seed=seed)
    directory = data or get_settings().data_dir
    if directory is None:
        raise MissingDataError(
            "no dataset given: use --data DIR, --anime/--ratings files, or --demo "
            "(or set OTAKU_DATA_DIR)"
        )
    return DataSources.from_directory(directory)


def _config(quick: bool, seed: int) -> TrainConfig:
    lightfm = LightFMConfig(seed=seed)
    rating = RatingModelConfig(seed=seed)
    ranker = RankerConfig(seed=seed)
    if quick:
        lightfm = replace(lightfm, epochs=10)
        rating = replace(rating, num_boost_round=300, learning_rate=0.05)
        ranker = replace(ranker, num_boost_round=150)
    return TrainConfig(ComponentsConfig(lightfm=lightfm, rating=rating, seed=seed), ranker)


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@data_app.command("fetch")
def data_fetch(
    dest: Annotated[Path | None, typer.Option(help="Target directory (default: data dir).")] = None,
) -> None:
    """Download the Kaggle "Anime Recommendation Database 2020" into the data directory."""
    target = dest or get_settings().resolved_data_dir
    try:
        for path in fetch_dataset(target):
            console.print(f"fetched {path}")
    except FetchError as error:
        _fail(error)


@data_app.command("validate")
def data_validate(
    data: DataDir = None,
    anime: AnimeFile = None,
    synopses: SynopsisFile = None,
    ratings: RatingFiles = None,
    demo: Demo = False,
    demo_users: DemoUsers = 2000,
) -> None:
    """Read and validate a dataset; print what it holds or the first error found."""
    try:
        sources = _sources(data, anime, synopses, ratings, demo, demo_users, get_settings().seed)
        dataset = sources.load()
    except (DataValidationError, MissingDataError) as error:
        _fail(error)
        return
    table = Table("what", "count", title=sources.label)
    table.add_row("anime", f"{dataset.n_items:,}")
    table.add_row("users", f"{dataset.n_users:,}")
    table.add_row("ratings", f"{len(dataset.ratings):,}")
    table.add_row("ratings dropped (anime not in catalog)", f"{dataset.dropped_unknown_anime:,}")
    table.add_row("anime with a synopsis", f"{sum(bool(t.strip()) for t in dataset.synopses):,}")
    console.print(table)


@data_app.command("load")
def data_load(
    data: DataDir = None,
    anime: AnimeFile = None,
    synopses: SynopsisFile = None,
    ratings: RatingFiles = None,
    demo: Demo = False,
    demo_users: DemoUsers = 2000,
    pool_share: Annotated[
        float, typer.Option(help="Share of new users held back for `otaku simulate-users`.")
    ] = 0.1,
) -> None:
    """Validate a dataset and write it into the database (OTAKU_DATABASE_URL, default SQLite):
    one transaction, idempotent (a second run adds nothing)."""
    from sqlalchemy.exc import SQLAlchemyError

    from otaku.jobs.load import load_dataset
    from otaku.storage.database import Database, database_url

    _configure_logging()
    settings = get_settings()
    try:
        sources = _sources(data, anime, synopses, ratings, demo, demo_users, settings.seed)
        dataset = sources.load()
        database = Database.from_settings(settings)
        origin = "demo" if sources.is_demo else "dataset"  # demo users are simulated
        outcome = load_dataset(database, dataset, pool_share, settings.seed, origin)
    except (DataValidationError, MissingDataError, ValueError) as error:
        _fail(error)
        return
    except SQLAlchemyError as error:
        _fail(RuntimeError(f"the database refused the load; nothing was written: {error}"))
        return
    table = Table("added", "count", title=f"{sources.label} → {database_url(settings)}")
    table.add_row("anime", f"{outcome.anime:,}")
    table.add_row("users", f"{outcome.users:,}")
    table.add_row("ratings", f"{outcome.ratings:,}")
    table.add_row("future users (pool)", f"{outcome.future_users:,}")
    table.add_row("future ratings (pool)", f"{outcome.future_ratings:,}")
    console.print(table)
    console.print(
        f"{outcome.seconds:.1f} s in all ({outcome.ratings_per_second:,.0f} ratings/s); "
        f"ratings written at {outcome.rating_insert_rate:,.0f} ratings/s"
    )


@app.command("simulate-users")
def simulate_users(
    low: Annotated[int, typer.Option("--min", help="Fewest users to move.")] = 10,
    high: Annotated[int, typer.Option("--max", help="Most users to move.")] = 25,
) -> None:
    """Move 10–25 random (seeded) users from the future-user pool into the live tables."""
    from otaku.jobs.runs import recorded_run
    from otaku.jobs.simulate import simulate_arrivals
    from otaku.storage.database import Database

    settings = get_settings()
    database = Database.from_settings(settings)
    try:
        with recorded_run(database, "simulate-users") as run:
            outcome = simulate_arrivals(database, settings.seed, low, high)
            run.detail = f"{len(outcome.user_ids)} users, {outcome.ratings} ratings"
    except ValueError as error:
        _fail(error)
        return
    console.print(
        f"{len(outcome.user_ids)} user(s) arrived with {outcome.ratings:,} ratings; "
        f"{outcome.pool_left:,} left in the pool"
    )


@app.command()
def retrain(
    quick: Quick = False,
    no_text: NoText = False,
    ndcg_margin: Annotated[
        float, typer.Option(help="Refuse a promotion that loses more NDCG@10 than this.")
    ] = 0.02,
) -> None:
    """Train a challenger on the database, compare it with the champion, promote or keep."""
    from otaku.jobs.retrain import retrain as run_retrain
    from otaku.jobs.runs import recorded_run
    from otaku.storage.database import Database

    _configure_logging()
    settings = get_settings()
    database = Database.from_settings(settings)
    try:
        with recorded_run(database, "retrain") as run:
            outcome = run_retrain(
                settings,
                database,
                _config(quick, settings.seed),
                with_text=not no_text,
                ndcg_margin=ndcg_margin,
            )
            comparison = outcome.comparison
            run.outcome = (
                "refused" if comparison.refused else "promoted" if comparison.promote else "kept"
            )
            run.detail = f"version {outcome.registered_version}: {outcome.comparison.reason}"
    except ValueError as error:
        _fail(error)
        return
    result = outcome.comparison
    table = Table(
        "", "champion", "challenger", title=f"retrain → version {outcome.registered_version}"
    )
    table.add_row(
        "median abs. error (bootstrap mean)",
        f"{result.champion_median_ae:.4f}",
        f"{result.challenger_median_ae:.4f}",
    )
    table.add_row("NDCG@10", f"{result.champion_ndcg:.4f}", f"{result.challenger_ndcg:.4f}")
    console.print(table)
    console.print(
        f"p-value {result.p_value:.4g}; {result.held_out_ratings:,} held-out ratings "
        f"of {result.test_users:,} test users"
    )
    verdict = "[bold green]promoted[/]" if result.promote else "[bold yellow]champion kept[/]"
    console.print(f"{verdict}: {result.reason}")


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="A registered version of the model.")],
) -> None:
    """Make a registered version the champion by hand (e.g. after a refused retrain)."""
    from mlflow.exceptions import MlflowException

    from otaku.storage.registry import champion_version
    from otaku.storage.registry import promote as move_alias

    settings = get_settings()
    before = champion_version(settings)
    try:
        move_alias(settings, version)
    except MlflowException as error:
        _fail(ValueError(f"cannot promote version {version}: {error.message}"))
        return
    console.print(f"champion: version {before} → {version}")


@app.command()
def scheduler() -> None:
    """Run simulate-users daily at 21:50 UTC and retrain weekly (Sundays 22:30 UTC)."""
    from otaku.jobs.scheduler import JOBS, run_forever

    _configure_logging()
    for job in JOBS:
        console.print(
            f"{job.name}: `{' '.join(job.command)}`, next at {job.next_run(datetime.now(UTC))}"
        )
    run_forever()


@app.command()
def train(
    data: DataDir = None,
    anime: AnimeFile = None,
    synopses: SynopsisFile = None,
    ratings: RatingFiles = None,
    demo: Demo = False,
    demo_users: DemoUsers = 2000,
    quick: Quick = False,
    no_text: NoText = False,
    register: Annotated[bool, typer.Option(help="Log and register the bundle in MLflow.")] = True,
) -> None:
    """Train every model and write one versioned bundle (logged to MLflow and registered)."""
    from otaku.jobs.train import train_bundle

    _configure_logging()
    settings = get_settings()
    try:
        sources = _sources(data, anime, synopses, ratings, demo, demo_users, settings.seed)
        outcome = train_bundle(
            settings,
            sources,
            _config(quick, settings.seed),
            with_text=not no_text,
            register=register,
        )
    except (DataValidationError, MissingDataError) as error:
        _fail(error)
        return
    meta = outcome.bundle.metadata
    console.print(f"[bold green]bundle {outcome.bundle.version}[/] written to {outcome.directory}")
    if meta["simulated"]:
        console.print("[yellow]trained on SIMULATED users (demo dataset)[/]")
    if outcome.registered is not None:
        reg = outcome.registered
        champion = " (champion)" if reg.is_champion else ""
        console.print(
            f"registered {reg.model_name} version {reg.version}{champion}, MLflow run {reg.run_id}"
        )
    timings = Table("stage", "seconds", title="training time")
    for stage, seconds in meta["timings_seconds"].items():
        timings.add_row(stage, f"{seconds:.1f}")
    console.print(timings)


@app.command()
def evaluate(
    data: DataDir = None,
    anime: AnimeFile = None,
    synopses: SynopsisFile = None,
    ratings: RatingFiles = None,
    demo: Demo = False,
    demo_users: DemoUsers = 2000,
    quick: Quick = False,
    no_text: NoText = False,
    out: Annotated[Path, typer.Option(help="Directory for evaluation.md / .json.")] = Path(
        "reports"
    ),
    seed_users: Annotated[
        int, typer.Option(help="Test users for the slow seed strategy (0 = all).")
    ] = 100,
    lightfm_own: Annotated[
        bool, typer.Option(help="Also LightFM's own P@10/R@10 on a random interaction split.")
    ] = True,
) -> None:
    """Evaluate every strategy and baseline with the DESIGN.md protocol."""
    from otaku.jobs.evaluate import run_evaluation

    _configure_logging()
    settings: Settings = get_settings()
    try:
        sources = _sources(data, anime, synopses, ratings, demo, demo_users, settings.seed)
        _, markdown, table = run_evaluation(
            settings,
            sources,
            _config(quick, settings.seed),
            out,
            with_text=not no_text,
            seed_users=seed_users or None,
            lightfm_own=lightfm_own,
        )
    except (DataValidationError, MissingDataError) as error:
        _fail(error)
        return
    console.print(markdown.read_text())
    console.print(f"written {markdown} and {table}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default OTAKU_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OTAKU_API_PORT).")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Serve this bundle directory, not the champion.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model).")] = 1,
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
        _fail(error)
        return
    console.print(f"API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "otaku.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
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
    with Database.from_settings(settings).transaction() as session:
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


if __name__ == "__main__":  # pragma: no cover
    app()
