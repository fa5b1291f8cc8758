"""Short, honest explanations of why an anime was recommended."""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from otaku.columns import LIKED_THRESHOLD
from otaku.pipeline.catalog import ItemTable

# Cosine similarity (LightFM ⊕ synopsis space) above which "like X" is a fair reason.
LIKE_SIMILARITY = 0.5
TOP_GENRES = 3


@dataclass(frozen=True)
class Taste:
    """What the explanations may cite about a user."""

    rated_items: np.ndarray
    ratings: np.ndarray
    genre_weights: Mapping[str, float]
    has_history: bool


def _anchors(taste: Taste) -> tuple[np.ndarray, np.ndarray]:
    """The user's liked anime (rated >= 7), or their best-rated ones when nothing is liked."""
    if len(taste.ratings) == 0:
        return taste.rated_items, taste.ratings
    liked = taste.ratings >= LIKED_THRESHOLD
    if not liked.any():
        liked = taste.ratings == taste.ratings.max()
    return taste.rated_items[liked], taste.ratings[liked]


def _favourite_genres(taste: Taste) -> set[str]:
    ranked = sorted(taste.genre_weights.items(), key=lambda pair: -pair[1])
    return {genre for genre, weight in ranked[:TOP_GENRES] if weight > 0}


def explain(
    table: ItemTable, unit_vectors: np.ndarray, items: np.ndarray, taste: Taste
) -> list[str]:
    """One reason per recommended item: a similar liked anime, shared genres, or popularity."""
    anchors, anchor_ratings = _anchors(taste)
    best_anchor = np.full(len(items), -1, dtype=np.int64)
    if len(anchors) and len(items):
        similarity = unit_vectors[items] @ unit_vectors[anchors].T
        closest = similarity.argmax(axis=1)
        close_enough = similarity[np.arange(len(items)), closest] >= LIKE_SIMILARITY
        best_anchor = np.where(close_enough, closest, -1)
    genres = _favourite_genres(taste)
    reasons = []
    for position, item in enumerate(items):
        anchor = int(best_anchor[position])
        shared = [genre for genre in table.genres_of(int(item)) if genre in genres]
        if anchor >= 0:
            name = table.names[int(anchors[anchor])]
            reasons.append(f"like {name}, which you rated {int(anchor_ratings[anchor])}")
        elif shared:
            reasons.append(f"matches your genres: {', '.join(shared)}")
        elif taste.has_history or taste.genre_weights:
            reasons.append("popular with users like you")
        else:
            reasons.append("popular on MyAnimeList")
    return reasons


def explain_similar(table: ItemTable, query: int, items: np.ndarray) -> list[str]:
    """Why each anime is similar to ``query``: the genres they share, else their story."""
    query_genres = set(table.genres_of(query))
    reasons = []
    for item in items:
        shared = [genre for genre in table.genres_of(int(item)) if genre in query_genres]
        if shared:
            reasons.append(f"shares genres with {table.names[query]}: {', '.join(shared)}")
        else:
            reasons.append(f"story and audience close to {table.names[query]}")
    return reasons
