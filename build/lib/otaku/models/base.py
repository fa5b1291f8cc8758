"""The shared Recommender base: fitting bookkeeping, known/unknown users, watched filtering and
top-k selection are done here once; each model implements ``_fit`` and ``_score`` only."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import joblib
import numpy as np
from scipy import sparse

from otaku.data.dataset import Dataset, IdMap


class NotFittedError(RuntimeError):
    """A model was used before ``fit``."""


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores per row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def mask_seen(scores: np.ndarray, seen: sparse.csr_matrix) -> None:
    """Set the scores of seen items to -inf in place (rows of ``seen`` align with ``scores``)."""
    rows, cols = seen.nonzero()
    scores[rows, cols] = -np.inf


@dataclass(frozen=True)
class FitState:
    """What every fitted model keeps of its training data: id maps, what users saw, popularity."""

    users: IdMap
    items: IdMap
    seen: sparse.csr_matrix
    popularity: np.ndarray

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.items)

    @classmethod
    def of(cls, data: Dataset) -> "FitState":
        """The state of a dataset."""
        return cls(data.users, data.items, data.seen_matrix, data.item_counts.astype(np.float32))


class Recommender(ABC):
    """Base class: ``fit`` returns self; ``recommend`` before ``fit`` raises NotFittedError.

    Users are external ids. A user unknown to the fitted data gets the most popular items.
    """

    name: ClassVar[str] = "recommender"

    _state: FitState | None = None

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run."""
        return self._state is not None

    @property
    def state(self) -> FitState:
        """Id maps and seen items of the data the model was fitted on."""
        if self._state is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")
        return self._state

    def fit(self, data: Dataset) -> Self:
        """Fit on ``data`` and return self."""
        self._fit(data)
        self._state = FitState.of(data)
        return self

    @abstractmethod
    def _fit(self, data: Dataset) -> None:
        """Model-specific fitting."""

    @abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores (len(user_idx) x n_items) for known users given as dense indices."""

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of all items for known users (dense indices), as float32."""
        _ = self.state
        return np.asarray(self._score(np.asarray(user_idx, dtype=np.int64)), dtype=np.float32)

    def recommend(
        self, user_ids: np.ndarray | list[int], k: int = 10, filter_watched: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` anime ids and scores per user (rows follow ``user_ids``).

        Watched anime are excluded when ``filter_watched``; unknown users get popular anime.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        data = self.state
        user_idx = data.users.to_internal(np.asarray(user_ids))
        known = user_idx >= 0
        k = min(k, data.n_items)
        items = np.empty((len(user_idx), k), dtype=np.int64)
        scores = np.empty((len(user_idx), k), dtype=np.float32)
        if known.any():
            items[known], scores[known] = self._recommend_known(user_idx[known], k, filter_watched)
        if (~known).any():
            popular = top_k(data.popularity[None, :], k)[0]
            items[~known] = popular
            scores[~known] = data.popularity[popular]
        return data.items.to_external(items), scores

    def _recommend_known(
        self, user_idx: np.ndarray, k: int, filter_watched: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for known users: score, hide watched, select."""
        scores = self.score_users(user_idx)
        if filter_watched:
            mask_seen(scores, self.state.seen[user_idx])
        top = top_k(scores, k)
        return top, np.take_along_axis(scores, top, axis=1)

    def save(self, path: Path) -> None:
        """Write the fitted model to ``path`` (joblib)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a model written by :meth:`save`."""
        model = joblib.load(path)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
