"""The shared model base (fitting bookkeeping, what a model saw) and top-k selection."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import joblib
import numpy as np

from otaku.data.dataset import Dataset, IdMap


class NotFittedError(RuntimeError):
    """A model was used before ``fit``."""


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores per row, best first."""
    return lowest_k(-scores, k)


def lowest_k(costs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest values along the last axis, smallest first (ties kept in
    index order, except which of the values tied at the cut are kept); a caller that builds
    its own cost array saves :func:`top_k`'s copy."""
    k = min(k, costs.shape[-1])
    part = np.argpartition(costs, k - 1, axis=-1)[..., :k]
    order = np.argsort(np.take_along_axis(costs, part, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1)


def row_products(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``rows @ columns.T``, one row at a time (matrix-vector products).

    A user's scores must not depend on who else is in the batch: a precomputed ranking is
    served as the one the engine computes for the user alone, and BLAS rounds a
    matrix-matrix product differently from the matrix-vector product of one user.
    """
    out = np.empty((rows.shape[0], columns.shape[0]), dtype=np.result_type(rows, columns))
    for position, row in enumerate(rows):
        np.matmul(columns, row, out=out[position])
    return out


@dataclass(frozen=True)
class FitState:
    """What every fitted model keeps of its training data: id maps and popularity (not the
    ratings themselves: the bundle holds them once, in the components)."""

    users: IdMap
    items: IdMap
    popularity: np.ndarray

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.items)

    @classmethod
    def of(cls, data: Dataset) -> "FitState":
        """The state of a dataset."""
        return cls(data.users, data.items, data.item_counts.astype(np.float32))


class Recommender(ABC):
    """A fitted model: ``fit`` returns self; using it before ``fit`` raises NotFittedError.

    Models only fit and score. Ranking (excluding watched anime, filters, paging, users the
    model never saw) is the strategies' shared work, done once in :mod:`otaku.pipeline`.
    """

    name: ClassVar[str] = "recommender"

    _state: FitState | None = None

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run."""
        return self._state is not None

    @property
    def state(self) -> FitState:
        """Id maps and item popularity of the data the model was fitted on."""
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
