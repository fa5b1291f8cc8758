"""What every command shares: the Typer apps, the console, option types and helpers."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from otaku.config import get_settings
from otaku.data.files import DataSources, MissingDataError
from otaku.pipeline.presets import DEFAULT_PRESET, PRESETS, UnknownPresetError, preset_config
from otaku.pipeline.sources import SourceSpec
from otaku.pipeline.sources.config import DEFAULT_SOURCES, SourcesConfigError, load_sources
from otaku.pipeline.training import TrainConfig

if TYPE_CHECKING:
    from otaku.cluster import Cluster

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
        help="Small models (10 LightFM epochs, 300 LightGBM rounds): for demos and tests; "
        "short for --preset quick.",
    ),
]
PresetName = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help=f"Training preset: {', '.join(PRESETS)} (default: OTAKU_PRESET, else "
        f"{DEFAULT_PRESET}). `otaku presets` describes them.",
    ),
]
NoText = Annotated[bool, typer.Option("--no-text", help="Skip synopsis embeddings (zeros).")]
ClusterAddress = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Dask scheduler (tcp://HOST:8786) to run the heavy stages on (default: "
        "OTAKU_DASK_SCHEDULER; unset: everything in this process).",
    ),
]


@contextmanager
def cluster_for(address: str | None) -> "Iterator[Cluster | None]":
    """The Dask cluster at ``address`` (or OTAKU_DASK_SCHEDULER), connected for the
    command's duration; None when neither is set. An unusable cluster ends the command."""
    from otaku.cluster import ClusterError, connected

    settings = get_settings()
    address = address or settings.dask_scheduler
    if not address:
        yield None
        return
    try:
        with connected(address, settings.dask_lightgbm_port) as cluster:
            console.print(
                f"on the Dask cluster at {address}: {len(cluster.client.nthreads())} workers"
            )
            yield cluster
    except ClusterError as error:
        fail(error)


def sources_of(
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


def configured_sources(sources_file: Path | None) -> tuple[SourceSpec, ...]:
    """The candidate sources: the built-in list changed by the sources file, if any (a bad
    file ends the command with its message)."""
    if sources_file is None:
        return DEFAULT_SOURCES
    try:
        return load_sources(sources_file)
    except SourcesConfigError as error:
        fail(error)


def train_config(quick: bool, preset: str | None = None) -> TrainConfig:
    """The training configuration of the chosen preset (``--quick``, else ``--preset``, else
    the configured one) with the configured seed and candidate sources."""
    settings = get_settings()
    name = preset or settings.preset
    if quick and preset not in (None, "quick"):
        fail(ValueError(f"--quick is --preset quick: it cannot go with --preset {preset}"))
    try:
        return preset_config(
            "quick" if quick else name, settings.seed, configured_sources(settings.sources_file)
        )
    except UnknownPresetError as error:
        fail(error)


def fail(error: Exception) -> NoReturn:
    """Print the error and end the command with exit code 2."""
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


def cli_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
