"""The immutable Dataset: catalog + interactions + id maps (external ids <-> dense indices)."""

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

from otaku.columns import Columns

log = logging.getLogger(__name__)


def binarise(ratings: sparse.csr_matrix, min_rating: float = 1.0) -> sparse.csr_matrix:
    """1 where a rating is at least ``min_rating`` (0 = unrated), as float32 CSR."""
    binary = ratings.copy().astype(np.float32)
    binary.data = (binary.data >= min_rating).astype(np.float32)
    binary.eliminate_zeros()
    return binary


@dataclass(frozen=True)
class IdMap:
    """Maps external ids to dense indices ``0..n-1`` and back."""

    external_ids: np.ndarray

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.external_ids)

    def __len__(self) -> int:
        return len(self.external_ids)

    def to_internal(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """Dense indices of ``ids``; ``-1`` where an id is unknown."""
        return np.asarray(self._index.get_indexer(pd.Index(np.asarray(ids))), dtype=np.int64)

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {int(external): position for position, external in enumerate(self.external_ids)}

    def position(self, external_id: int) -> int:
        """Dense index of one id (``-1`` if unknown): a dict lookup, for request paths."""
        return self._positions.get(int(external_id), -1)

    def to_external(self, indices: np.ndarray) -> np.ndarray:
        """External ids of dense ``indices``."""
        return self.external_ids[np.asarray(indices)]


@dataclass(frozen=True)
class Dataset:
    """Interactions (with dense indices), the item catalog aligned to item indices, id maps."""

    catalog: pd.DataFrame
    ratings: pd.DataFrame
    users: IdMap
    items: IdMap
    synopses: np.ndarray = field(repr=False)
    dropped_unknown_anime: int = 0

    @property
    def n_users(self) -> int:
        """Number of users with at least one rating."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of anime in the catalog."""
        return len(self.items)

    @cached_property
    def rating_matrix(self) -> sparse.csr_matrix:
        """Users x items matrix of ratings (float32, 0 = not rated)."""
        return sparse.csr_matrix(
            (
                self.ratings[Columns.rating].to_numpy(np.float32),
                (
                    self.ratings[Columns.user_idx].to_numpy(),
                    self.ratings[Columns.item_idx].to_numpy(),
                ),
            ),
            shape=(self.n_users, self.n_items),
        )

    @cached_property
    def seen_matrix(self) -> sparse.csr_matrix:
        """Binary users x items matrix of what each user rated."""
        return binarise(self.rating_matrix)

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Number of ratings per item."""
        return np.asarray(self.seen_matrix.sum(axis=0)).ravel()

    def content_hash(self) -> str:
        """A short hash of the catalog ids and the ratings: identifies the data snapshot."""
        digest = hashlib.sha256()
        digest.update(self.items.external_ids.tobytes())
        ordered = self.ratings.sort_values([Columns.user_id, Columns.anime_id])
        for column in (Columns.user_id, Columns.anime_id, Columns.rating):
            digest.update(ordered[column].to_numpy(np.int64).tobytes())
        return digest.hexdigest()[:16]

    @classmethod
    def construct(
        cls, catalog: pd.DataFrame, ratings: pd.DataFrame, synopses: pd.Series | None = None
    ) -> "Dataset":
        """Build a dataset; ratings of anime missing from the catalog are dropped and counted."""
        catalog = catalog.sort_values(Columns.anime_id).reset_index(drop=True)
        items = IdMap(catalog[Columns.anime_id].to_numpy(np.int64))
        item_idx = items.to_internal(ratings[Columns.anime_id].to_numpy())
        known = item_idx >= 0
        dropped = int((~known).sum())
        if dropped:
            log.warning("dropped %d rating(s) of anime missing from the catalog", dropped)
        columns = [Columns.user_id, Columns.anime_id, Columns.rating]
        kept = ratings.loc[known, columns] if dropped else ratings[columns].copy()
        user_ids, user_idx = np.unique(kept[Columns.user_id].to_numpy(), return_inverse=True)
        users = IdMap(user_ids.astype(np.int64))
        # int32 indices: a user or item index never reaches 2**31 (half the memory of int64)
        kept[Columns.user_idx] = user_idx.astype(np.int32)
        kept[Columns.item_idx] = item_idx[known].astype(np.int32)
        del user_idx, item_idx
        texts = np.full(len(items), "", dtype=object)
        if synopses is not None:
            positions = items.to_internal(synopses.index.to_numpy())
            present = positions >= 0
            texts[positions[present]] = synopses.to_numpy()[present]
        return cls(catalog, kept.reset_index(drop=True), users, items, texts, dropped)

    def subset(self, keep: np.ndarray) -> "Dataset":
        """The same catalog and id maps with only the ratings where ``keep`` is true."""
        ratings = self.ratings[keep].reset_index(drop=True)
        return Dataset(self.catalog, ratings, self.users, self.items, self.synopses)

    def history(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and ratings of one user."""
        row = self.rating_matrix.getrow(user_idx)
        return row.indices.astype(np.int64), row.data
