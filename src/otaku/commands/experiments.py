"""`otaku experiment …`: start, stop, list and report online experiments; prune old
impressions and clicks."""

import math
from typing import Annotated

import typer
from rich.table import Table

from otaku.commands.common import app, console, fail
from otaku.config import get_settings
from otaku.experiments.stats import Interval

experiment_app = typer.Typer(help="Online experiments (A/B tests of strategies).")
app.add_typer(experiment_app, name="experiment")


def _database():  # type: ignore[no-untyped-def]
    from otaku.storage.database import Database

    return Database.from_settings(get_settings())


@experiment_app.command("start")
def start(
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    arm: Annotated[
        list[str],
        typer.Option(
            help="An arm as name=strategy:share[@model version] (at least two; shares add "
            "up to 1), e.g. control=default:0.5 new=default:0.5@7."
        ),
    ],
    description: Annotated[str | None, typer.Option(help="What it tests.")] = None,
) -> None:
    """Start an experiment now (one runs at a time); servers follow within seconds."""
    from otaku.experiments.definition import ExperimentSpec, parse_arm
    from otaku.experiments.store import (
        ExperimentConflictError,
        check_model_versions,
        start_experiment,
    )
    from otaku.storage.registry import version_exists

    settings = get_settings()
    try:
        spec = ExperimentSpec(
            name=name, arms=tuple(parse_arm(text) for text in arm), description=description
        )
        check_model_versions(spec, lambda version: version_exists(settings, version))
        start_experiment(_database(), spec)
    except (ValueError, ExperimentConflictError) as error:
        fail(error)
        return
    shares = ", ".join(f"{a.name}: {a.strategy} {a.share:.0%}" for a in spec.arms)
    console.print(f"experiment {name} started ({shares})")


@experiment_app.command("stop")
def stop(name: Annotated[str, typer.Argument(help="The experiment's name.")]) -> None:
    """Stop an experiment (its impressions stay for reports)."""
    from otaku.experiments.store import NoSuchExperimentError, stop_experiment

    try:
        stop_experiment(_database(), name)
    except NoSuchExperimentError as error:
        fail(error)
        return
    console.print(f"experiment {name} stopped")


@experiment_app.command("list")
def list_all() -> None:
    """Every experiment, the newest first."""
    from otaku.experiments.store import list_experiments

    table = Table("name", "arms", "started", "stopped")
    for stored in list_experiments(_database()):
        arms = ", ".join(f"{a.name}={a.strategy}:{a.share:g}" for a in stored.spec.arms)
        stopped = "running" if stored.running else f"{stored.stopped_at:%Y-%m-%d %H:%M}"
        table.add_row(stored.spec.name, arms, f"{stored.started_at:%Y-%m-%d %H:%M}", stopped)
    console.print(table)


def _interval(estimate: Interval, digits: int = 3) -> str:
    if math.isnan(estimate.value):
        return "–"
    if math.isnan(estimate.low):
        return f"{estimate.value:.{digits}f}"
    return f"{estimate.value:.{digits}f} [{estimate.low:.{digits}f}, {estimate.high:.{digits}f}]"


@experiment_app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    k: Annotated[int, typer.Option(min=1, max=100, help="Hit rate at k (top k shown).")] = 10,
    window_days: Annotated[
        float | None, typer.Option(help="Hit window in days (default OTAKU_HIT_WINDOW_DAYS).")
    ] = None,
) -> None:
    """Online metrics per arm with 95% intervals, each arm tested against the first, and
    whether there are enough users to decide."""
    from otaku.experiments.report import experiment_report
    from otaku.experiments.store import NoSuchExperimentError, get_experiment

    database = _database()
    window = window_days or get_settings().hit_window_days
    try:
        result = experiment_report(database, get_experiment(database, name).spec, k, window)
    except (NoSuchExperimentError, ValueError) as error:
        fail(error)
        return
    table = Table(
        "arm",
        "strategy",
        "users",
        "pages",
        f"hit rate@{k}",
        "mean rating (n)",
        "dismiss rate",
        "coverage",
        "p50 / p99 ms",
        title=f"experiment {name}: hit = a shown anime rated >= 7 within {window:g} days",
    )
    for arm in result.arms:
        table.add_row(
            arm.arm,
            arm.strategy,
            f"{arm.users:,}",
            f"{arm.impressions:,}",
            _interval(arm.hit_rate),
            f"{_interval(arm.mean_rating, 2)} ({arm.rated:,})",
            _interval(arm.dismiss_rate),
            f"{arm.coverage:.3f}",
            f"{arm.latency_p50_ms:.1f} / {arm.latency_p99_ms:.1f}",
        )
    console.print(table)
    ratio = result.sample_ratio
    verdict = "a mismatch: do not trust the arms" if ratio.p_value < 0.001 else "as expected"
    console.print(
        f"users per arm against the shares: chi-square p = {ratio.p_value:.4g} ({verdict})"
    )
    for comparison in result.comparisons:
        hit, rating = comparison.hit_rate_test, comparison.mean_rating_test
        enough = "enough users to decide" if comparison.enough_users else "NOT enough users"
        console.print(
            f"{comparison.arm} vs {comparison.control}: hit rate p = {hit.p_value:.4g} "
            f"(z = {hit.statistic:.2f}); mean rating p = {rating.p_value:.4g} "
            "(z-test, delta method over users); "
            f"{enough}: the observed hit-rate difference needs {comparison.users_needed:,.0f} "
            "users per arm for 80% power at 5%"
        )


@experiment_app.command("prune")
def prune() -> None:
    """Delete impressions and clicks older than their retention (OTAKU_IMPRESSION_RETENTION_DAYS,
    OTAKU_CLICK_RETENTION_DAYS); "not interested" is kept."""
    from otaku.experiments.retention import prune_old

    settings = get_settings()
    outcome = prune_old(
        _database(), settings.impression_retention_days, settings.click_retention_days
    )
    console.print(f"deleted {outcome.impressions:,} impressions and {outcome.clicks:,} clicks")
