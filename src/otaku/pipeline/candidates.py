"""Candidates from the configured sources and the features of (user, candidate) pairs for the
ranker. The feature names follow from the source list, and a trained ranker keeps them: a
bundle whose sources and ranker disagree is refused when it loads.

Users are described by a :class:`UserContext` batch (history + vectors), so known users and
new users folded in from a few ratings go through the same code.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from otaku.models.base import lowest_k
from otaku.pipeline.sources import CandidateSource, UserContext

PER_SOURCE_FEATURES = ("score", "rank", "z")
NO_OPINION = float(np.finfo(np.float32).min)
ITEM_AND_USER_FEATURES = (
    "mal_score",
    "log_members",
    "start_year",
    "episodes",
    "item_mean_rating",
    "log_item_count",
    "genre_affinity",
    "user_log_count",
    "user_mean_rating",
)


def feature_names(sources: Sequence[str]) -> list[str]:
    """The ranker's columns for a source list: score, rank and standard score of each source,
    the first source's score as a share of its best, then item and user numbers."""
    if not sources:
        raise ValueError("the ranker needs at least one candidate source")
    return [
        *(f"{source}_{kind}" for kind in PER_SOURCE_FEATURES for source in sources),
        f"{sources[0]}_share",
        *ITEM_AND_USER_FEATURES,
    ]


def source_scores(
    sources: Mapping[str, CandidateSource], users: UserContext
) -> dict[str, np.ndarray]:
    """Each source's score matrix (users x items), NaN where a source has no opinion."""
    return {
        name: np.asarray(source.score(users), dtype=np.float32) for name, source in sources.items()
    }


def candidate_union(
    scores: Mapping[str, np.ndarray], quotas: Sequence[Mapping[str, int]], allowed: np.ndarray
) -> list[np.ndarray]:
    """Per user, the union of each source's top allowed items (sources in configuration
    order, then each source's order); ``quotas`` and ``allowed`` have a row per user."""
    candidates = []
    for row, (row_quotas, row_allowed) in enumerate(zip(quotas, allowed, strict=True)):
        blocked = ~row_allowed
        tops = []
        for name, quota in row_quotas.items():
            if quota <= 0:
                continue
            # Lowest cost first; items a source has no opinion on come after the ones it
            # scores, before blocked ones.
            cost = np.negative(scores[name][row])
            cost[np.isnan(cost)] = -NO_OPINION
            cost[blocked] = np.inf
            tops.append(lowest_k(cost, quota))
        merged = np.concatenate(tops) if tops else np.empty(0, np.int64)
        unique, first = np.unique(merged, return_index=True)
        ordered = unique[np.argsort(first)]
        candidates.append(ordered[row_allowed[ordered]])
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
    """0 for the best score; items without a score (NaN) rank last."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(len(values), dtype=np.float32)
    return ranks


def candidate_features(
    sources: Mapping[str, CandidateSource],
    item_numbers: np.ndarray,
    item_genres: np.ndarray,
    users: UserContext,
    allowed: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Candidates per user and their feature rows (columns: :func:`feature_names`).

    ``allowed`` (users x items, boolean) holds what each user may be shown: watched anime and
    filtered-out anime are excluded before candidates are drawn, so filters never leave a
    user with fewer candidates than the quotas promise. A user with no history draws with
    each source's ``cold_quota``.
    """
    names = list(sources)
    scores = source_scores(sources, users)
    counts = np.diff(users.ratings.indptr)
    quotas = [
        {name: (s.spec.quota if count else s.spec.cold_quota) for name, s in sources.items()}
        for count in counts
    ]
    candidates = candidate_union(scores, quotas, allowed)
    genre_counts = np.maximum(item_genres.sum(axis=1), 1.0)
    features = []
    for row, chosen in enumerate(candidates):
        raw = np.column_stack([scores[name][row, chosen] for name in names])
        ranks = np.column_stack([_rank_within(raw[:, i]) for i in range(len(names))])
        z_scores = _z_scores(raw)
        first = np.nan_to_num(raw[:, 0])
        first_share = first / max(float(np.abs(first).max(initial=0.0)), 1e-6)
        affinity = (item_genres[chosen] @ users.features[row, :-1]) / genre_counts[chosen]
        user_block = np.tile([np.log1p(counts[row]), users.features[row, -1]], (len(chosen), 1))
        block = [raw, ranks, z_scores, first_share, item_numbers[chosen], affinity, user_block]
        features.append(np.column_stack(block).astype(np.float32))
    return candidates, features
