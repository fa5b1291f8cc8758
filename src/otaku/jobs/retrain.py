"""`otaku retrain`: a challenger trained on the database, compared with the champion, promoted
by the reference's rule.

The comparison uses the fixed hold-out (:mod:`otaku.jobs.holdout`): ratings that neither
``otaku train`` nor ``otaku retrain`` ever trains on, so both models are scored on ratings
neither saw (a champion whose bundle records another hold-out, or none, is not compared: the
run is refused). The rule itself is :func:`otaku.jobs.promotion.decide`: bootstrap medians of
the absolute errors and a Welch t-test, then an NDCG@10 guard. Everything is logged to
MLflow; the ``champion`` alias moves last, so a retrain that fails or is killed leaves the
champion as it was.
"""

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from otaku.cluster import Cluster
from otaku.columns import LIKED_THRESHOLD, Columns
from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.evaluation.metrics import ndcg_at_k
from otaku.jobs.holdout import HeldOut, fixed_split, holdout_record, unfair_because
from otaku.jobs.promotion import decide
from otaku.jobs.train import build_snapshot_metadata, compute_text_embeddings
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.engine import Engine
from otaku.pipeline.profiles import NewUser, Profile
from otaku.pipeline.training import TrainConfig, fit_all
from otaku.storage.database import Database
from otaku.storage.models import User
from otaku.storage.repository import Repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """How the challenger fared against the champion on the held-out ratings."""

    champion_version: str | None
    champion_median_ae: float
    challenger_median_ae: float
    p_value: float
    champion_ndcg: float
    challenger_ndcg: float
    held_out_ratings: int
    test_users: int
    promote: bool
    reason: str
    refused: bool = False  # no fair comparison was possible (the champion saw the hold-out)


def snapshot_dataset(database: Database) -> Dataset:
    """The database's catalog and live ratings as a dataset."""
    with database.reading() as session:
        repo = Repository(session)
        catalog, synopses = repo.catalog_frame()
        ratings = repo.ratings_frame()
    return Dataset.construct(catalog, ratings, synopses)


def _held_out_profiles(engine: Engine, split: HeldOut) -> dict[int, Profile]:
    """Each held-out user folded in from their visible ratings on anime the model knows
    (built once per model, read by both measures)."""
    return {
        int(user): engine.new_profile(
            NewUser(
                ratings={a: r for a, r in split.visible[int(user)].items() if engine.knows_anime(a)}
            )
        )
        for user in split.held[Columns.user_id].unique()
    }


def _absolute_errors(
    engine: Engine, profiles: dict[int, Profile], usable: pd.DataFrame
) -> np.ndarray:
    """|served predicted rating - true rating| of each usable held-out rating (user order)."""
    errors = []
    for _, group in usable.groupby(Columns.user_id, sort=True):
        profile = profiles[int(group[Columns.user_id].iloc[0])]
        predicted = engine.predicted_ratings_of(profile, group[Columns.anime_id].tolist())
        errors.append(np.abs(predicted - group[Columns.rating].to_numpy(np.float32)))
    return np.concatenate(errors) if errors else np.empty(0, np.float32)


def _ndcg(engine: Engine, profiles: dict[int, Profile], split: HeldOut) -> float:
    scores = []
    for _, group in split.held.groupby(Columns.user_id):
        liked = set(group.loc[group[Columns.rating] >= LIKED_THRESHOLD, Columns.anime_id].tolist())
        if not liked:
            continue
        profile = profiles[int(group[Columns.user_id].iloc[0])]
        page = engine.recommend_for_profile(profile, k=10)
        scores.append(ndcg_at_k([item.anime.anime_id for item in page.items], liked))
    return float(np.mean(scores)) if scores else 0.0


def compare(
    champion: Bundle | None,
    champion_version: str | None,
    challenger: Bundle,
    split: HeldOut,
    ndcg_margin: float,
    seed: int,
) -> tuple[Comparison, np.ndarray, np.ndarray]:
    """Score both models on the held-out ratings of anime both know, and apply the rule
    (:func:`otaku.jobs.promotion.decide`); returns both bootstrap samples too. A champion
    that may have been trained on those ratings is not compared: the result is a refusal."""
    unfair = None if champion is None else unfair_because(champion.metadata, seed)
    if unfair is not None:
        reason = (
            f"refused: champion version {champion_version} may have seen the held-out ratings "
            f"({unfair}), so no fair comparison is possible; the challenger is registered but "
            "not promoted (promote it with `otaku promote VERSION` if you accept it)"
        )
        nan = float("nan")
        refusal = Comparison(
            champion_version, nan, nan, nan, nan, nan, 0, len(split.visible), False, reason, True
        )
        return refusal, np.empty(0), np.empty(0)
    engines = [Engine(challenger.models, challenger.metadata)]
    if champion is not None:
        engines.append(Engine(champion.models, champion.metadata))
    known = np.ones(len(split.held), dtype=bool)
    for engine in engines:
        known &= np.array([engine.knows_anime(a) for a in split.held[Columns.anime_id]], bool)
    usable = split.held[known].sort_values(Columns.user_id, kind="stable")
    profiles = [_held_out_profiles(engine, split) for engine in engines]
    new_errors = _absolute_errors(engines[0], profiles[0], usable)
    new_ndcg = _ndcg(engines[0], profiles[0], split)
    old_errors = old_ndcg = None
    if champion is not None:
        old_errors = _absolute_errors(engines[1], profiles[1], usable)
        old_ndcg = _ndcg(engines[1], profiles[1], split)
    decision = decide(old_errors, new_errors, old_ndcg, new_ndcg, ndcg_margin, seed=seed)
    result = Comparison(
        champion_version,
        decision.champion_median_ae,
        decision.challenger_median_ae,
        decision.p_value,
        float("nan") if old_ndcg is None else old_ndcg,
        new_ndcg,
        len(usable),
        len(split.visible),
        decision.promote,
        decision.reason,
    )
    return result, decision.champion_medians, decision.challenger_medians


def bootstrap_plot(path: Path, champion: np.ndarray, challenger: np.ndarray) -> Path:
    """Histogram of the two bootstrap distributions of the median absolute error (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    if len(champion):
        axes.hist(champion, bins=20, alpha=0.6, label="champion")
    if len(challenger):
        axes.hist(challenger, bins=20, alpha=0.6, label="challenger")
    axes.set_xlabel("median absolute error (bootstrap resamples of held-out ratings)")
    axes.set_ylabel("resamples")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


@dataclass(frozen=True)
class RetrainOutcome:
    """The challenger, where it went, and the decision."""

    bundle: Bundle
    directory: Path
    registered_version: str
    comparison: Comparison


def retrain(
    settings: Settings,
    database: Database,
    config: TrainConfig,
    with_text: bool = True,
    ndcg_margin: float = 0.02,
    cluster: "Cluster | None" = None,
) -> RetrainOutcome:
    """Train a challenger on the database, compare, log, register, maybe promote."""
    from otaku.storage.registry import champion_version, load_registered, log_bundle, promote

    started = time.perf_counter()
    data = snapshot_dataset(database)
    with database.reading() as session:
        simulated = session.scalar(select(User.user_id).where(User.origin == "demo").limit(1))
    held, split = fixed_split(data, settings.seed)
    training = data.subset(~held)
    text = compute_text_embeddings(training, settings, with_text)
    models = fit_all(training, config, text, cluster)
    label = "database snapshot" + (" (simulated demo users)" if simulated is not None else "")
    metadata = build_snapshot_metadata(data, label, config, models, text, settings)
    metadata["simulated"] = simulated is not None
    metadata["holdout"] = holdout_record(data.ratings, held, settings.seed)
    if cluster is not None:
        metadata["cluster"] = cluster.describe()
    challenger = Bundle(models, metadata)
    current = champion_version(settings)
    champion = load_registered(settings, current) if current is not None else None
    comparison, old, new = compare(champion, current, challenger, split, ndcg_margin, settings.seed)
    challenger.metadata["retrain"] = asdict(comparison)
    challenger.metadata["timings_seconds"]["total"] = time.perf_counter() - started
    directory = challenger.save(settings.bundles_dir / challenger.version)
    with tempfile.TemporaryDirectory() as scratch:
        plot = bootstrap_plot(Path(scratch) / "bootstrap_median_ae.png", old, new)
        registered = log_bundle(
            settings,
            directory,
            challenger,
            make_champion_if_none=False,
            extra_metrics=_comparison_metrics(comparison),
            extra_artifacts=[plot],
        )
    if comparison.promote:
        promote(settings, registered.version)
    log.info(
        "retrain: %s (%s)", "promoted" if comparison.promote else "kept champion", comparison.reason
    )
    return RetrainOutcome(challenger, directory, registered.version, comparison)


def _comparison_metrics(comparison: Comparison) -> dict[str, float]:
    values: dict[str, Any] = asdict(comparison)
    return {
        f"retrain.{key}": float(value)
        for key, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and not np.isnan(value)
    } | {"retrain.promoted": float(comparison.promote)}
