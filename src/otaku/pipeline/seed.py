"""The seed strategy's selection: the reference algorithm, exactly as DESIGN.md states it.

Predict the rating of every anime with the LightGBM model; keep the top 1000 (unwatched). If
the user rated anything >= 7: the mean item vector (LightFM ⊕ text) of their highest-rated
anime picks the k most cosine-similar among those 1000, ordered by predicted rating.
Otherwise: the top k by predicted rating.
"""

import numpy as np

from otaku.columns import LIKED_THRESHOLD
from otaku.models.base import top_k

CANDIDATE_POOL = 1000


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def select_like_reference(
    predicted: np.ndarray,
    unit_vectors: np.ndarray,
    rated_items: np.ndarray,
    ratings: np.ndarray,
    k: int,
) -> np.ndarray:
    """The reference selection over ``predicted`` (-inf = not allowed): similar-to-favourites
    among the top 1000, else the top k; only allowed items are returned."""
    if len(ratings) == 0 or ratings.max() < LIKED_THRESHOLD:
        chosen = top_k(predicted[None, :], k)[0]
        return chosen[np.isfinite(predicted[chosen])]
    pool = top_k(predicted[None, :], CANDIDATE_POOL)[0]
    pool = pool[np.isfinite(predicted[pool])]
    favourites = rated_items[ratings == ratings.max()]
    target = unit_vectors[favourites].mean(axis=0)
    similarity = unit_vectors[pool] @ target
    chosen = pool[top_k(similarity[None, :], min(k, len(pool)))[0]] if len(pool) else pool
    ordered = chosen[np.argsort(-predicted[chosen], kind="stable")]
    if len(ordered) < k:  # tiny catalogs: fill from the rest of the ranking
        taken = set(ordered.tolist())
        rest = [item for item in top_k(predicted[None, :], k)[0] if item not in taken]
        ordered = np.concatenate([ordered, rest[: k - len(ordered)]]).astype(np.int64)
        ordered = ordered[np.isfinite(predicted[ordered])]
    return ordered
