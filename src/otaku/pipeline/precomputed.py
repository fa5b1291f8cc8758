"""Rankings computed ahead of time (``otaku precompute``) and how a served engine takes one
up: a stored ranking is used only by the model version that computed it and only for the
exact profile it was computed for, so the answer is the one the engine would compute."""

from dataclasses import dataclass

import numpy as np

from otaku.pipeline.engine import Engine
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.pages import DEFAULT_K, Stopwatch
from otaku.pipeline.profiles import Profile
from otaku.pipeline.rankings import RANKING_DEPTH

PRECOMPUTED_STRATEGY = "default"
# Users ranked in one batch: their source scores (users x items per source) are held at once.
RANKING_BATCH = 64


@dataclass(frozen=True)
class StoredRanking:
    """One user's precomputed ranking as the database holds it."""

    user_id: int
    model_version: str
    profile_key: str  # the profile's fingerprint, hex
    anime_ids: list[int]
    scores: list[float]
    first_page_ratings: list[float] | None = None  # raw predictions for the first page


@dataclass(frozen=True)
class ComputedRankings:
    """Users' rankings as ``otaku precompute`` computes them, a row per user."""

    anime_ids: np.ndarray  # users x RANKING_DEPTH, -1 padded
    scores: np.ndarray  # users x RANKING_DEPTH
    first_page_ratings: np.ndarray  # users x DEFAULT_K: the rating model on the first page
    keys: list[str]  # each profile's fingerprint (hex): what a stored ranking is valid for


def compute_rankings(
    engine: Engine, user_ids: np.ndarray, batch_size: int = RANKING_BATCH
) -> ComputedRankings:
    """Known users' default rankings through the engine's own ranking path, ``batch_size``
    users a call (nothing left in its cache), with the rating model's predictions for each
    first page. Each ranking is the one the engine computes for the user alone."""
    anime_ids = np.full((len(user_ids), RANKING_DEPTH), -1, dtype=np.int64)
    scores = np.zeros((len(user_ids), RANKING_DEPTH), dtype=np.float32)
    first_page = np.full((len(user_ids), DEFAULT_K), np.nan, dtype=np.float32)
    keys = []
    for start in range(0, len(user_ids), batch_size):
        profiles = [engine.known_profile(int(u)) for u in user_ids[start : start + batch_size]]
        rankings = engine.rankings.deep_rankings(profiles, PRECOMPUTED_STRATEGY, Stopwatch())
        predicted = engine.predictions.of_pages(
            [profile.features for profile in profiles], [items[:DEFAULT_K] for items, _ in rankings]
        )
        for row, (profile, (items, values), ratings) in enumerate(
            zip(profiles, rankings, predicted, strict=True)
        ):
            anime_ids[start + row, : len(items)] = engine.table.anime_ids[items]
            scores[start + row, : len(values)] = values
            first_page[start + row, : len(ratings)] = ratings
            keys.append(profile.fingerprint.hex())
    return ComputedRankings(anime_ids, scores, first_page, keys)


def adopt_stored(engine: Engine, profile: Profile, stored: StoredRanking | None) -> bool:
    """Put a stored ranking in the engine's cache when it is valid for this model and this
    profile (True), with its first page's predicted ratings when it has them; a stale or
    foreign one is ignored and the engine computes as usual."""
    if stored is None or stored.model_version != engine.version:
        return False
    if stored.profile_key != profile.fingerprint.hex():
        return False  # the user's ratings changed since it was computed
    positions = engine.parts.state.items
    items = np.array([positions.position(a) for a in stored.anime_ids], dtype=np.int64)
    if (items < 0).any() or len(items) != len(stored.scores):
        return False
    engine.rankings.adopt(profile, PRECOMPUTED_STRATEGY, (items, np.asarray(stored.scores)))
    ratings = stored.first_page_ratings
    if ratings is not None and len(ratings) == min(DEFAULT_K, len(items)):
        engine.predictions.remember_page(
            profile.features, items[: len(ratings)], np.asarray(ratings)
        )
    return True


def answers_from_precomputed(strategy: str, item_filter: ItemFilter, end: int) -> bool:
    """Whether a page (ending at item ``end``) can be read from a precomputed ranking: the
    default strategy, no filters, within the stored depth."""
    return strategy == PRECOMPUTED_STRATEGY and item_filter == ItemFilter() and end <= RANKING_DEPTH
