"""Rankings computed ahead of time (``otaku precompute``) and how a served engine takes one
up: a stored ranking is used only by the model version that computed it and only for the
exact profile it was computed for, so the answer is the one the engine would compute."""

from dataclasses import dataclass

import numpy as np

from otaku.pipeline.engine import Engine
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.pages import Stopwatch
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


def compute_rankings(
    engine: Engine, user_ids: np.ndarray, batch_size: int = RANKING_BATCH
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Known users' default rankings through the engine's own ranking path, ``batch_size``
    users a call (nothing left in its cache): users x :data:`RANKING_DEPTH` anime ids (-1
    padded), their scores, and each user's profile fingerprint (hex), the key a stored
    ranking is valid for. Each ranking is the one the engine computes for the user alone."""
    anime_ids = np.full((len(user_ids), RANKING_DEPTH), -1, dtype=np.int64)
    scores = np.zeros((len(user_ids), RANKING_DEPTH), dtype=np.float32)
    keys = []
    for start in range(0, len(user_ids), batch_size):
        profiles = [engine.known_profile(int(u)) for u in user_ids[start : start + batch_size]]
        rankings = engine.rankings.deep_rankings(profiles, PRECOMPUTED_STRATEGY, Stopwatch())
        for row, (profile, (items, values)) in enumerate(zip(profiles, rankings, strict=True)):
            anime_ids[start + row, : len(items)] = engine.table.anime_ids[items]
            scores[start + row, : len(values)] = values
            keys.append(profile.fingerprint.hex())
    return anime_ids, scores, keys


def adopt_stored(engine: Engine, profile: Profile, stored: StoredRanking | None) -> bool:
    """Put a stored ranking in the engine's cache when it is valid for this model and this
    profile (True); a stale or foreign one is ignored and the engine computes as usual."""
    if stored is None or stored.model_version != engine.version:
        return False
    if stored.profile_key != profile.fingerprint.hex():
        return False  # the user's ratings changed since it was computed
    positions = engine.parts.state.items
    items = np.array([positions.position(a) for a in stored.anime_ids], dtype=np.int64)
    if (items < 0).any() or len(items) != len(stored.scores):
        return False
    engine.rankings.adopt(profile, PRECOMPUTED_STRATEGY, (items, np.asarray(stored.scores)))
    return True


def answers_from_precomputed(strategy: str, item_filter: ItemFilter, end: int) -> bool:
    """Whether a page (ending at item ``end``) can be read from a precomputed ranking: the
    default strategy, no filters, within the stored depth."""
    return strategy == PRECOMPUTED_STRATEGY and item_filter == ItemFilter() and end <= RANKING_DEPTH
