"""Named candidate sources and the features of (user, candidate) pairs for the ranker.

Users are described by a :class:`UserContext` batch (history + vectors), so known users and
new users folded in from a few ratings go through the same code.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from otaku.data.dataset import binarise
from otaku.models.base import top_k
from otaku.pipeline.components import Components
from otaku.pipeline.seed import LIKED_THRESHOLD

# How many candidates each source contributes (before de-duplication).
SOURCE_QUOTAS: dict[str, int] = {
    "ease": 100,
    "ease_liked": 50,
    "ials": 50,
    "lightfm": 50,
    "itemknn": 50,
    "text": 30,
    "popular": 30,
}
SOURCES = tuple(SOURCE_QUOTAS)
OUTSIDE_MODEL = -1e5
FEATURE_NAMES = [
    *(f"{source}_score" for source in SOURCES),
    *(f"{source}_rank" for source in SOURCES),
    *(f"{source}_z" for source in SOURCES),
    "ease_share",
    "mal_score",
    "log_members",
    "start_year",
    "episodes",
    "item_mean_rating",
    "log_item_count",
    "genre_affinity",
    "user_log_count",
    "user_mean_rating",
]


@dataclass(frozen=True)
class UserContext:
    """A batch of users as the sources see them."""

    ratings: sparse.csr_matrix  # users x items, 0 = unrated
    features: np.ndarray  # user features (genre shares + mean rating)
    lightfm_vectors: np.ndarray
    ials_vectors: np.ndarray

    @property
    def seen(self) -> sparse.csr_matrix:
        """Binary history."""
        return binarise(self.ratings)


def known_user_context(parts: Components, user_idx: np.ndarray) -> UserContext:
    """The context of users present in the fitted data."""
    return UserContext(
        ratings=parts.ratings[user_idx],
        features=parts.user_features[user_idx],
        lightfm_vectors=parts.lightfm.user_embeddings[user_idx],
        ials_vectors=parts.ials.user_vectors(user_idx),
    )


def _liked_text_profile(parts: Components, ratings: sparse.csr_matrix) -> np.ndarray:
    """Unit mean synopsis embedding of each user's likes (of everything rated, if no like)."""
    liked = binarise(ratings, LIKED_THRESHOLD)
    profile = np.asarray(liked @ parts.text_embeddings)
    no_like = np.flatnonzero(np.diff(liked.indptr) == 0)
    if len(no_like):
        profile[no_like] = binarise(ratings[no_like]) @ parts.text_embeddings
    norms = np.linalg.norm(profile, axis=1, keepdims=True)
    return np.divide(profile, norms, out=np.zeros_like(profile), where=norms > 0)


def source_scores(
    parts: Components, users: UserContext, allowed: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Full score matrices (users x items) of every source; watched items, and items outside
    ``allowed`` (a boolean mask over items) when given, are -inf."""
    seen = users.seen
    scores = {
        "ease": parts.ease.score_history(seen),
        "ease_liked": parts.ease_liked.score_ratings(users.ratings),
        "ials": parts.ials.score_vectors(users.ials_vectors),
        "lightfm": parts.lightfm.score_vectors(users.lightfm_vectors),
        "itemknn": parts.itemknn.score_history(seen),
        "text": _liked_text_profile(parts, users.ratings) @ parts.text_embeddings.T,
        "popular": np.tile(np.log1p(parts.state.popularity), (seen.shape[0], 1)),
    }
    rows, cols = seen.nonzero()
    blocked = None if allowed is None else np.flatnonzero(~allowed)
    for matrix in scores.values():
        matrix[rows, cols] = -np.inf
        if blocked is not None:
            matrix[:, blocked] = -np.inf
    return scores


def candidate_union(scores: dict[str, np.ndarray], quotas: dict[str, int]) -> list[np.ndarray]:
    """Per user, the union of each source's top items (sources in quota order)."""
    tops = [top_k(scores[name], quota) for name, quota in quotas.items() if quota > 0]
    merged = np.hstack(tops)
    candidates = []
    for row in range(merged.shape[0]):
        unique, first = np.unique(merged[row], return_index=True)
        ordered = unique[np.argsort(first)]
        candidates.append(ordered[np.isfinite(scores["popular"][row, ordered])])
    return candidates


def _z_scores(raw: np.ndarray) -> np.ndarray:
    """Per-column standard scores within one user's candidates (NaN stays NaN)."""
    valid = ~np.isnan(raw)
    count = np.maximum(valid.sum(axis=0), 1)
    mean = np.where(valid, raw, 0.0).sum(axis=0) / count
    spread = np.sqrt((np.where(valid, raw - mean, 0.0) ** 2).sum(axis=0) / count)
    spread = np.where(spread > 0, spread, 1.0)
    return (raw - mean) / spread


def _rank_within(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(len(values), dtype=np.float32)
    return ranks


def candidate_features(
    parts: Components,
    users: UserContext,
    quotas: dict[str, int] | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Candidates per user and their feature rows (columns: :data:`FEATURE_NAMES`).

    ``allowed`` (a boolean mask over items) restricts every source before candidates are
    drawn, so filters never leave a user with fewer candidates than the quotas promise.
    """
    scores = source_scores(parts, users, allowed)
    candidates = candidate_union(scores, quotas or SOURCE_QUOTAS)
    items = parts.item_numbers
    genre_counts = np.maximum(parts.item_genres.sum(axis=1), 1.0)
    counts = np.asarray((users.ratings > 0).sum(axis=1)).ravel()
    features = []
    for row, chosen in enumerate(candidates):
        raw = np.column_stack([scores[name][row, chosen] for name in SOURCES])
        ranks = np.column_stack([_rank_within(raw[:, i]) for i in range(len(SOURCES))])
        raw[raw <= OUTSIDE_MODEL] = np.nan  # EASE's "not modelled" marker is no score
        z_scores = _z_scores(raw)
        ease = np.nan_to_num(raw[:, 0])
        ease_share = ease / max(float(np.abs(ease).max(initial=0.0)), 1e-6)
        affinity = (parts.item_genres[chosen] @ users.features[row, :-1]) / genre_counts[chosen]
        user_block = np.tile([np.log1p(counts[row]), users.features[row, -1]], (len(chosen), 1))
        block = [raw, ranks, z_scores, ease_share, items[chosen], affinity, user_block]
        features.append(np.column_stack(block).astype(np.float32))
    return candidates, features
