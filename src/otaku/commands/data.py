"""`otaku data …`: fetch, validate and load datasets."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from otaku.commands.common import (
    AnimeFile,
    DataDir,
    Demo,
    DemoUsers,
    RatingFiles,
    SynopsisFile,
    cli_logging,
    console,
    data_app,
    fail,
    sources_of,
)
from otaku.config import get_settings
from otaku.data.fetch import FetchError, fetch_dataset
from otaku.data.files import MissingDataError
from otaku.data.validation import DataValidationError


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
        fail(error)


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
        sources = sources_of(data, anime, synopses, ratings, demo, demo_users, get_settings().seed)
        dataset = sources.load()
    except (DataValidationError, MissingDataError) as error:
        fail(error)
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

    cli_logging()
    settings = get_settings()
    try:
        sources = sources_of(data, anime, synopses, ratings, demo, demo_users, settings.seed)
        dataset = sources.load()
        database = Database.from_settings(settings)
        origin = "demo" if sources.is_demo else "dataset"  # demo users are simulated
        outcome = load_dataset(database, dataset, pool_share, settings.seed, origin)
    except (DataValidationError, MissingDataError, ValueError) as error:
        fail(error)
        return
    except SQLAlchemyError as error:
        fail(RuntimeError(f"the database refused the load; nothing was written: {error}"))
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


@data_app.command("synth")
def data_synth(
    users: Annotated[int, typer.Option(help="Simulated users (MAL 2020 has 310,059).")],
    out: Annotated[Path, typer.Option(help="Directory for the Kaggle-shaped files.")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same files.")] = 42,
    synopses: Annotated[
        Path | None, typer.Option(help="Real anime_with_synopsis.csv to copy (else simulated).")
    ] = None,
) -> None:
    """Write a MAL-shaped synthetic dataset (the real catalog, simulated users) for scale
    benchmarks; quality is measured on real data."""
    from otaku.data.synth import write_synthetic
    from otaku.progress import StepBar

    try:
        with StepBar("Simulated users", users) as bar:
            counts = write_synthetic(out, users, seed, synopses=synopses, progress=bar.advance)
    except (ValueError, OSError) as error:
        fail(error)
        return
    console.print(
        f"wrote {counts['ratings']:,} simulated ratings of {counts['users']:,} users over "
        f"{counts['anime']:,} anime to {out} (SIMULATED: see {out / 'SYNTHETIC.txt'})"
    )
