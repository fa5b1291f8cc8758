"""`otaku retrain`: a challenger trained on the database, compared with the champion, promoted
by the reference's rule.

The comparison uses fixed test users (a seeded hash of the user id) and a fixed 20% of their
ratings (a seeded hash of user and anime), held out from the challenger's training data. On
those held-out ratings both models' rating predictions give 100 bootstrap resamples of the
median absolute error; a Welch t-test at α = 0.05 decides: no significant difference →
promote (the challenger knows more users); significant and better → promote; significant and
worse → keep. NDCG@10 of the default strategy on the same users must not drop by more than
``ndcg_margin``, or the promotion is refused. Everything is logged to MLflow; the ``champion``
alias moves last, so a retrain that fails or is killed leaves the champion as it was.
"""

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import select

from otaku.columns import Columns
from otaku.config import Settings
from otaku.data.dataset import Dataset, IdMap
from otaku.evaluation.metrics import ndcg_at_k
from otaku.features.user import features_from_history
from otaku.jobs.load import in_pool
from otaku.jobs.train import build_snapshot_metadata, compute_text_embeddings
from otaku.models.rating import predict_best, rows
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.engine import Engine, NewUser
from otaku.pipeline.seed import LIKED_THRESHOLD
from otaku.pipeline.training import TrainConfig, fit_all
from otaku.storage.database import Database
from otaku.storage.models import User
from otaku.storage.repository import Repository

log = logging.getLogger(__name__)
TEST_USER_SHARE = 0.2
HELD_OUT_SHARE = 0.2
MIN_TEST_RATINGS = 5
BOOTSTRAP_RESAMPLES = 100
ALPHA = 0.05


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


@dataclass(frozen=True)
class HeldOut:
    """The fixed test split: visible history and held-out ratings of each test user."""

    visible: dict[int, dict[int, float]]
    held: pd.DataFrame  # user_id, anime_id, rating


def snapshot_dataset(database: Database) -> Dataset:
    """The database's catalog and live ratings as a dataset."""
    with database.transaction() as session:
        repo = Repository(session)
        catalog, synopses = repo.catalog_frame()
        ratings = repo.ratings_frame()
    return Dataset.construct(catalog, ratings, synopses)


def fixed_split(data: Dataset, seed: int) -> tuple[np.ndarray, HeldOut]:
    """Mask of held-out rating rows and the split it defines (the same on every run)."""
    ratings = data.ratings
    users = ratings[Columns.user_id].to_numpy(np.int64)
    counts = ratings.groupby(Columns.user_id)[Columns.rating].transform("size").to_numpy()
    is_test = in_pool(users, TEST_USER_SHARE, seed) & (counts >= MIN_TEST_RATINGS)
    pair = users * 1_000_003 + ratings[Columns.anime_id].to_numpy(np.int64)
    held = is_test & in_pool(pair, HELD_OUT_SHARE, seed + 1)
    visible: dict[int, dict[int, float]] = {}
    for user, anime, rating in ratings.loc[
        is_test & ~held, [Columns.user_id, Columns.anime_id, Columns.rating]
    ].itertuples(index=False):
        visible.setdefault(int(user), {})[int(anime)] = float(rating)
    frame = ratings.loc[held, [Columns.user_id, Columns.anime_id, Columns.rating]]
    return held, HeldOut(
        visible, frame[frame[Columns.user_id].isin(visible)].reset_index(drop=True)
    )


def _visible(split: HeldOut, group: pd.DataFrame, items: IdMap) -> dict[int, float]:
    """The visible ratings of the group's user, on anime the model knows."""
    user = int(group[Columns.user_id].iloc[0])
    return {a: r for a, r in split.visible[user].items() if items.position(a) >= 0}


def _absolute_errors(bundle: Bundle, split: HeldOut, usable: pd.DataFrame) -> np.ndarray:
    parts = bundle.models.components
    assert parts.rating_model is not None and parts.rating_model.booster is not None
    items = parts.state.items
    blocks = []
    for _, group in usable.groupby(Columns.user_id):
        history = _visible(split, group, items)
        features = features_from_history(
            np.array([items.position(a) for a in history], dtype=np.int64),
            np.array(list(history.values()), dtype=np.float32),
            parts.item_genres,
        )
        held_items = np.array([items.position(a) for a in group[Columns.anime_id]])
        blocks.append(rows(features, parts.item_vectors[held_items]))
    predicted = predict_best(parts.rating_model.booster, np.vstack(blocks))
    truth = usable.sort_values(Columns.user_id, kind="stable")[Columns.rating].to_numpy()
    return np.abs(predicted - truth)


def _ndcg(engine: Engine, split: HeldOut) -> float:
    items = engine.parts.state.items
    scores = []
    for _, group in split.held.groupby(Columns.user_id):
        liked = set(group.loc[group[Columns.rating] >= LIKED_THRESHOLD, Columns.anime_id].tolist())
        if not liked:
            continue
        history = _visible(split, group, items)
        profile = engine.new_profile(NewUser(ratings=history))
        page = engine.recommend_for_profile(profile, k=10)
        scores.append(ndcg_at_k([item.anime.anime_id for item in page.items], liked))
    return float(np.mean(scores)) if scores else 0.0


def _bootstrap_medians(errors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    picks = rng.integers(0, len(errors), size=(BOOTSTRAP_RESAMPLES, len(errors)))
    return np.median(errors[picks], axis=1)


def compare(
    champion: Bundle | None,
    champion_version: str | None,
    challenger: Bundle,
    split: HeldOut,
    ndcg_margin: float,
    seed: int,
) -> tuple[Comparison, np.ndarray, np.ndarray]:
    """The reference's decision rule plus the NDCG guard; returns both bootstrap samples."""
    new_items = challenger.models.components.state.items
    if champion is None:
        usable = split.held[[new_items.position(a) >= 0 for a in split.held[Columns.anime_id]]]
        errors = _absolute_errors(challenger, split, usable)
        medians = _bootstrap_medians(errors, np.random.default_rng(seed))
        ndcg = _ndcg(Engine(challenger.models, challenger.metadata), split)
        result = Comparison(
            None,
            float("nan"),
            float(np.median(errors)),
            float("nan"),
            float("nan"),
            ndcg,
            len(usable),
            len(split.visible),
            True,
            "no champion yet",
        )
        return result, np.array([]), medians
    old_items = champion.models.components.state.items
    known_to_both = [
        new_items.position(a) >= 0 and old_items.position(a) >= 0
        for a in split.held[Columns.anime_id]
    ]
    usable = split.held[known_to_both].sort_values(Columns.user_id, kind="stable")
    old_medians = _bootstrap_medians(
        _absolute_errors(champion, split, usable), np.random.default_rng(seed)
    )
    new_medians = _bootstrap_medians(
        _absolute_errors(challenger, split, usable), np.random.default_rng(seed)
    )
    p_value = float(stats.ttest_ind(new_medians, old_medians, equal_var=False).pvalue)
    old_ndcg = _ndcg(Engine(champion.models, champion.metadata), split)
    new_ndcg = _ndcg(Engine(challenger.models, challenger.metadata), split)
    better = new_medians.mean() < old_medians.mean()
    if np.isnan(p_value) or p_value >= ALPHA:
        promote, reason = (
            True,
            f"no significant difference (p = {p_value:.3g}): the challenger knows more users",
        )
    elif better:
        promote, reason = True, f"significantly better median absolute error (p = {p_value:.3g})"
    else:
        promote, reason = False, f"significantly worse median absolute error (p = {p_value:.3g})"
    if promote and new_ndcg < old_ndcg - ndcg_margin:
        promote, reason = (
            False,
            f"NDCG@10 would drop from {old_ndcg:.4f} to {new_ndcg:.4f} (margin {ndcg_margin})",
        )
    result = Comparison(
        champion_version,
        float(old_medians.mean()),
        float(new_medians.mean()),
        p_value,
        old_ndcg,
        new_ndcg,
        len(usable),
        len(split.visible),
        promote,
        reason,
    )
    return result, old_medians, new_medians


def bootstrap_plot(path: Path, champion: np.ndarray, challenger: np.ndarray) -> Path:
    """Histogram of the two bootstrap distributions of the median absolute error (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    if len(champion):
        axes.hist(champion, bins=20, alpha=0.6, label="champion")
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
) -> RetrainOutcome:
    """Train a challenger on the database, compare, log, register, maybe promote."""
    from otaku.storage.registry import champion_version, load_registered, log_bundle, promote

    started = time.perf_counter()
    data = snapshot_dataset(database)
    with database.transaction() as session:
        simulated = session.scalar(select(User.user_id).where(User.origin == "demo").limit(1))
    held, split = fixed_split(data, settings.seed)
    training = data.subset(~held)
    text = compute_text_embeddings(training, settings, with_text)
    models = fit_all(training, config, text)
    label = "database snapshot" + (" (simulated demo users)" if simulated is not None else "")
    metadata = build_snapshot_metadata(data, label, config, models, text, settings)
    metadata["simulated"] = simulated is not None
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
