"""The seed strategy: the reference algorithm, exactly as DESIGN.md states it.

Known user: predict the rating of every anime with the LightGBM model; keep the top 1000
(unwatched). If the user rated anything >= 7: the mean item vector (LightFM ⊕ text) of their
highest-rated anime picks the k most cosine-similar among those 1000, ordered by predicted
rating. Otherwise: the top k by predicted rating.
"""

import numpy as np

from otaku.data.dataset import Dataset
from otaku.features.text import Encoder
from otaku.models.base import NotFittedError, Recommender, mask_seen, top_k
from otaku.models.rating import rows
from otaku.pipeline.components import (
    Components,
    ComponentsConfig,
    fit_components,
    text_embeddings_for,
)

LIKED_THRESHOLD = 7
CANDIDATE_POOL = 1000


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


class SeedRecommender(Recommender):
    """The reference algorithm over fitted components."""

    name = "seed"

    def __init__(
        self,
        config: ComponentsConfig | None = None,
        encoder: Encoder | None = None,
        components: Components | None = None,
    ) -> None:
        self.config = config or ComponentsConfig()
        self.encoder = encoder
        self.components = components
        if components is not None:
            self._attach(components)

    def _attach(self, components: Components) -> None:
        if components.rating_model is None:
            raise ValueError("the seed strategy needs components fitted with a rating model")
        self.components = components
        self._state = components.state
        self._unit_vectors = normalise_rows(components.item_vectors)

    def _fit(self, data: Dataset) -> None:
        text = text_embeddings_for(data, self.encoder, None)
        self._attach(fit_components(data, self.config, text))

    @property
    def parts(self) -> Components:
        """The fitted components."""
        if self.components is None:
            raise NotFittedError("SeedRecommender is not fitted: call fit() first")
        return self.components

    def predict_ratings(
        self, user_features: np.ndarray, num_threads: int | None = None
    ) -> np.ndarray:
        """Predicted rating of every anime for one user feature vector."""
        parts = self.parts
        assert parts.rating_model is not None
        return parts.rating_model.predict(rows(user_features, parts.item_vectors), num_threads)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        features = self.parts.user_features
        return np.vstack([self.predict_ratings(features[user]) for user in user_idx])

    def _recommend_known(
        self, user_idx: np.ndarray, k: int, filter_watched: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        items = np.empty((len(user_idx), k), dtype=np.int64)
        scores = np.empty((len(user_idx), k), dtype=np.float32)
        for row, user in enumerate(user_idx):
            predicted = self.predict_ratings(self.parts.user_features[user])[None, :]
            history = self.parts.ratings[user]
            if filter_watched:
                mask_seen(predicted, history)
            items[row] = self.select(predicted[0], history.indices, history.data, k)
            scores[row] = predicted[0, items[row]]
        return items, scores

    def select(
        self, predicted: np.ndarray, rated_items: np.ndarray, ratings: np.ndarray, k: int
    ) -> np.ndarray:
        """The reference selection: similar-to-favourites among the top 1000, else top k."""
        if len(ratings) == 0 or ratings.max() < LIKED_THRESHOLD:
            return top_k(predicted[None, :], k)[0]
        pool = top_k(predicted[None, :], CANDIDATE_POOL)[0]
        pool = pool[np.isfinite(predicted[pool])]
        favourites = rated_items[ratings == ratings.max()]
        target = self._unit_vectors[favourites].mean(axis=0)
        similarity = self._unit_vectors[pool] @ target
        chosen = pool[top_k(similarity[None, :], min(k, len(pool)))[0]]
        ordered = chosen[np.argsort(-predicted[chosen], kind="stable")]
        if len(ordered) < k:  # tiny catalogs: fill from the rest of the ranking
            rest = [item for item in top_k(predicted[None, :], k)[0] if item not in set(ordered)]
            ordered = np.concatenate([ordered, rest[: k - len(ordered)]]).astype(np.int64)
        return ordered
