"""The rating model as the request path uses it: full-catalog predictions per user feature
vector (cached), and predictions for just a page of items when those are not cached."""

from collections.abc import Sequence

import numpy as np

from otaku.models.rating import RatingModel, predict_best, rows
from otaku.pipeline.cache import LruCache

# The rating model sees a user only through their features, so a user who rates something
# gets a new key (never stale).
PREDICTION_CACHE_SIZE = 512
PAGE_CACHE_SIZE = 50_000


class RatingPredictions:
    """Predicted ratings for one served bundle (thread-safe; fixed thread count per call)."""

    def __init__(
        self, model: RatingModel, item_vectors: np.ndarray, feature_width: int, threads: int
    ) -> None:
        if model.booster is None:
            raise ValueError("the bundle has no fitted rating model: it cannot be served")
        self.model = model
        self.item_vectors = item_vectors
        self.threads = threads
        self.full_cache: LruCache[bytes, np.ndarray] = LruCache(PREDICTION_CACHE_SIZE)
        self.page_cache: LruCache[tuple[bytes, bytes], np.ndarray] = LruCache(PAGE_CACHE_SIZE)
        # A user with no history (all-zero features): similar items and cold pages read it.
        self.cold = self.full(np.zeros(feature_width, np.float32))

    def full(self, features: np.ndarray) -> np.ndarray:
        """The prediction for every anime (read-only array, cached per feature vector)."""
        key = np.ascontiguousarray(features, dtype=np.float32).tobytes()
        cached = self.full_cache.get(key)
        if cached is not None:
            return cached
        predicted = self.model.predict(rows(features, self.item_vectors), self.threads)
        predicted.setflags(write=False)
        self.full_cache.put(key, predicted)
        return predicted

    def of_items(self, features: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of a page of items: from the full-catalog predictions when they
        are cached, else the rating model on just those rows (tens of microseconds a row)."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        if not features.any():
            return self.cold[items]
        cached = self.full_cache.get(features.tobytes())
        if cached is not None:
            return cached[items]
        key = _page_key(features, items)
        page = self.page_cache.get(key)
        if page is None:
            page = self.of_pages([features], [items])[0]
            self.page_cache.put(key, page)
        return page

    def of_pages(
        self, features: Sequence[np.ndarray], items: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """The rating model on several users' pages (a feature vector and items each) in one
        call; a row's prediction does not depend on the rows beside it."""
        assert self.model.booster is not None  # checked in __init__
        if not any(len(i) for i in items):
            return [np.empty(0, np.float32) for _ in items]
        stacked = np.concatenate(
            [rows(f, self.item_vectors[i]) for f, i in zip(features, items, strict=True)]
        )
        predicted = predict_best(self.model.booster, stacked, self.threads)
        return np.split(predicted, np.cumsum([len(i) for i in items])[:-1])

    def remember_page(self, features: np.ndarray, items: np.ndarray, predicted: np.ndarray) -> None:
        """Take a page's predictions made elsewhere by this model (a precomputed ranking's)."""
        self.page_cache.put(_page_key(features, items), np.asarray(predicted, dtype=np.float32))

    def clear(self) -> None:
        """Forget every cached prediction."""
        self.full_cache.clear()
        self.page_cache.clear()


def _page_key(features: np.ndarray, items: np.ndarray) -> tuple[bytes, bytes]:
    return (
        np.ascontiguousarray(features, dtype=np.float32).tobytes(),
        np.ascontiguousarray(items, dtype=np.int64).tobytes(),
    )
