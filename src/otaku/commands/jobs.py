"""Batch jobs: simulate-users, retrain, precompute, promote, scheduler, train, evaluate."""

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from otaku.commands.common import (
    AnimeFile,
    ClusterAddress,
    DataDir,
    Demo,
    DemoUsers,
    NoText,
    PresetName,
    Quick,
    RatingFiles,
    SynopsisFile,
    app,
    cli_logging,
    cluster_for,
    console,
    fail,
    sources_of,
    train_config,
)
from otaku.config import Settings, get_settings
from otaku.data.files import MissingDataError
from otaku.data.validation import DataValidationError

if TYPE_CHECKING:
    from otaku.storage.database import Database


@app.command("simulate-users")
def simulate_users(
    low: Annotated[int, typer.Option("--min", help="Fewest users to arrive a day.")] = 10,
    high: Annotated[int, typer.Option("--max", help="Most users to arrive a day.")] = 25,
    days: Annotated[int, typer.Option(min=1, help="Days to simulate in one go.")] = 1,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop/--no-loop",
            help="Closed loop: users arrive with a few ratings and act on what the served "
            "model shows them (--no-loop: they arrive with all their ratings).",
        ),
    ] = True,
    starter_ratings: Annotated[
        int, typer.Option(min=0, help="Ratings a user arrives with in the closed loop.")
    ] = 5,
    dismiss_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help='Share of shown, unwatched anime marked "not interested".'
        ),
    ] = 0.2,
) -> None:
    """Users arrive from the future-user pool (10-25 a day, seeded); in the closed loop they
    ask for recommendations (through the running experiment's arms), rate what they truly
    rated and dismiss some of the rest."""
    from otaku.jobs.runs import recorded_run
    from otaku.jobs.simulate import simulate_arrivals
    from otaku.storage.database import Database

    settings = get_settings()
    database = Database.from_settings(settings)
    if loop:
        _closed_loop(settings, database, (low, high), days, starter_ratings, dismiss_share)
        return
    try:
        for day in range(days):
            with recorded_run(database, "simulate-users") as run:
                outcome = simulate_arrivals(database, settings.seed + day, low, high)
                run.detail = f"{len(outcome.user_ids)} users, {outcome.ratings} ratings"
            console.print(
                f"{len(outcome.user_ids)} user(s) arrived with {outcome.ratings:,} ratings; "
                f"{outcome.pool_left:,} left in the pool"
            )
    except ValueError as error:
        fail(error)


def _closed_loop(
    settings: Settings,
    database: "Database",
    arrivals: tuple[int, int],
    days: int,
    starter_ratings: int,
    dismiss_share: float,
) -> None:
    from otaku.jobs.closed_loop import simulate_day
    from otaku.jobs.runs import recorded_run
    from otaku.progress import track
    from otaku.service.model import ModelNotReadyError, load_served_model
    from otaku.service.online import OnlineExperiments
    from otaku.service.users import UserDirectory

    try:
        served = load_served_model(settings)
    except ModelNotReadyError as error:
        fail(RuntimeError(f"the closed loop needs a served model ({error}); or use --no-loop"))
        return
    users = UserDirectory(database)
    online = OnlineExperiments(database, settings, None)
    start = settings.seed + _days_simulated(database)
    try:
        for day in track(range(days), description="Simulated days", total=days):
            with recorded_run(database, "simulate-users") as run:
                outcome = simulate_day(
                    start + day,
                    served,
                    users,
                    online,
                    settings.seed,
                    arrivals,
                    starter_ratings,
                    dismiss_share,
                )
                run.detail = (
                    f"{outcome.arrived} arrived, {outcome.asked} asked, {outcome.rated} rated, "
                    f"{outcome.dismissed} dismissed"
                )
            arms = ", ".join(f"{arm} {n}" for arm, n in sorted(outcome.arms.items()))
            console.print(f"day {day + 1}: {run.detail} (pages by arm: {arms or 'none'})")
    except ValueError as error:
        fail(error)
    finally:
        online.impressions.close()


def _days_simulated(database: "Database") -> int:
    """Runs of simulate-users so far (each day draws differently)."""
    from sqlalchemy import func, select

    from otaku.storage.models import JobRun

    with database.reading() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(JobRun).where(JobRun.job == "simulate-users")
            )
            or 0
        )


@app.command()
def retrain(
    quick: Quick = False,
    preset: PresetName = None,
    no_text: NoText = False,
    ndcg_margin: Annotated[
        float, typer.Option(help="Refuse a promotion that loses more NDCG@10 than this.")
    ] = 0.02,
    precompute_after: Annotated[
        bool,
        typer.Option(
            "--precompute/--no-precompute",
            help="After a promotion, precompute every known user's ranking with the new model.",
        ),
    ] = True,
    cluster: ClusterAddress = None,
) -> None:
    """Train a challenger on the database, compare it with the champion, promote or keep."""
    from otaku.jobs.retrain import retrain as run_retrain
    from otaku.jobs.runs import recorded_run
    from otaku.storage.database import Database

    cli_logging()
    settings = get_settings()
    database = Database.from_settings(settings)
    try:
        with recorded_run(database, "retrain") as run, cluster_for(cluster) as on_cluster:
            outcome = run_retrain(
                settings,
                database,
                train_config(quick, preset),
                with_text=not no_text,
                ndcg_margin=ndcg_margin,
                cluster=on_cluster,
            )
            comparison = outcome.comparison
            run.outcome = (
                "refused" if comparison.refused else "promoted" if comparison.promote else "kept"
            )
            run.detail = f"version {outcome.registered_version}: {outcome.comparison.reason}"
    except ValueError as error:
        fail(error)
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
    if result.promote and precompute_after:
        precompute(cluster=cluster)


@app.command()
def precompute(
    processes: Annotated[
        int, typer.Option(help="Worker processes (forked: they share the loaded model).")
    ] = 1,
    cluster: ClusterAddress = None,
) -> None:
    """Rank every known user with the served model (default strategy, depth 100) and store
    the rankings in the database: their unfiltered pages become a read."""
    from otaku.jobs.precompute import precompute_rankings
    from otaku.jobs.precompute_cluster import ModelSource
    from otaku.jobs.runs import recorded_run
    from otaku.service.model import ModelNotReadyError, load_served_model
    from otaku.storage.database import Database

    cli_logging()
    settings = get_settings()
    try:
        served = load_served_model(settings)
    except ModelNotReadyError as error:
        fail(error)
        return
    database = Database.from_settings(settings)
    source = ModelSource.of(settings, served.registry_version)
    try:
        with recorded_run(database, "precompute") as run, cluster_for(cluster) as on_cluster:
            outcome = precompute_rankings(
                served.engine, database, processes, cluster=on_cluster, model_source=source
            )
            run.outcome = "done"
            run.detail = f"{outcome.users} users, model {outcome.model_version}"
    except ValueError as error:
        fail(error)
        return
    console.print(
        f"precomputed {outcome.users:,} users' rankings with model {outcome.model_version} "
        f"in {outcome.seconds:.1f} s ({outcome.users_per_second:,.0f} users/s)"
    )


@app.command()
def presets() -> None:
    """List the training presets (`--preset`) and what each one trains on."""
    from otaku.pipeline.presets import PRESETS

    table = Table("preset", "what it trains", title="training presets")
    for preset in PRESETS.values():
        name = preset.name + (" (configured)" if preset.name == get_settings().preset else "")
        table.add_row(name, preset.description)
    console.print(table)


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
        fail(ValueError(f"cannot promote version {version}: {error.message}"))
        return
    console.print(f"champion: version {before} → {version}")


@app.command()
def scheduler() -> None:
    """Run simulate-users daily at 21:50 UTC, precompute daily at 22:10 UTC and retrain
    weekly (Sundays 22:30 UTC)."""
    from otaku.jobs.scheduler import JOBS, run_forever

    cli_logging()
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
    preset: PresetName = None,
    no_text: NoText = False,
    register: Annotated[bool, typer.Option(help="Log and register the bundle in MLflow.")] = True,
    cluster: ClusterAddress = None,
) -> None:
    """Train every model and write one versioned bundle (logged to MLflow and registered)."""
    from otaku.jobs.train import train_bundle

    cli_logging()
    settings = get_settings()
    try:
        sources = sources_of(data, anime, synopses, ratings, demo, demo_users, settings.seed)
        with cluster_for(cluster) as on_cluster:
            outcome = train_bundle(
                settings,
                sources,
                train_config(quick, preset),
                with_text=not no_text,
                register=register,
                cluster=on_cluster,
            )
    except (DataValidationError, MissingDataError) as error:
        fail(error)
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
    preset: PresetName = None,
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
    tune: Annotated[
        bool,
        typer.Option(
            help="Tune the baselines on a validation split first (small grid with --quick)."
        ),
    ] = True,
    cluster: ClusterAddress = None,
) -> None:
    """Evaluate every strategy and baseline with the DESIGN.md protocol (with --cluster the
    models are trained through the Dask path, so both paths are measured the same way)."""
    from otaku.jobs.evaluate import run_evaluation

    cli_logging()
    settings: Settings = get_settings()
    try:
        sources = sources_of(data, anime, synopses, ratings, demo, demo_users, settings.seed)
        with cluster_for(cluster) as on_cluster:
            _, markdown, table = run_evaluation(
                settings,
                sources,
                train_config(quick, preset),
                out,
                with_text=not no_text,
                seed_users=seed_users,
                tune=tune,
                quick_grids=quick,
                lightfm_own=lightfm_own,
                cluster=on_cluster,
            )
    except (DataValidationError, MissingDataError) as error:
        fail(error)
        return
    console.print(markdown.read_text())
    console.print(f"written {markdown} and {table}")
