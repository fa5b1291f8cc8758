"""Collaborative models: item-kNN (cosine), EASE^R and iALS (``implicit``). They fit and score;
the candidate sources in :mod:`otaku.pipeline.sources` serve them to the strategies."""

from functools import cached_property

import numpy as np
from scipy import linalg, sparse

from otaku.data.dataset import Dataset, binarise
from otaku.models.base import Recommender, row_products

# Users per block of the item-item gram: each block's sparse product holds at most
# items x items entries, so memory stays near the dense result whatever the number of users.
GRAM_BLOCK_USERS = 20_000


def item_gram(interactions: sparse.csr_matrix) -> np.ndarray:
    """``X.T @ X`` as a dense float64 array, summed over blocks of users (rows)."""
    n_items = interactions.shape[1]
    gram = np.zeros((n_items, n_items), dtype=np.float64)
    for start in range(0, interactions.shape[0], GRAM_BLOCK_USERS):
        block = interactions[start : start + GRAM_BLOCK_USERS]
        gram += (block.T @ block).toarray()
    return gram


class ItemKNNRecommender(Recommender):
    """Item-based kNN: cosine similarity of binary item columns, ``neighbours`` kept per item."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours

    def _fit(self, data: Dataset) -> None:
        seen = data.seen_matrix.tocsc()
        norms = np.sqrt(np.asarray(seen.multiply(seen).sum(axis=0)).ravel())
        normalised = seen @ sparse.diags(1.0 / np.maximum(norms, 1e-9))
        similarity = (normalised.T @ normalised).tocsr().astype(np.float32)
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        self._similarity = _keep_top_per_row(similarity, self.neighbours)

    def score_history(self, history: sparse.csr_matrix) -> np.ndarray:
        """Scores for users given as binary histories (rows x items)."""
        return np.asarray((history @ self._similarity).todense(), dtype=np.float32)


def _keep_top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    rows, cols, values = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if end == start:
            continue
        data = matrix.data[start:end]
        best = np.argsort(-data)[:keep]
        rows.append(np.full(len(best), row))
        cols.append(matrix.indices[start:end][best])
        values.append(data[best])
    if not rows:
        return sparse.csr_matrix(matrix.shape, dtype=np.float32)
    # Transposed so that history @ result scores items by their neighbours' presence.
    top = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    )
    return top.T.tocsr()


class EASERecommender(Recommender):
    """EASE^R (Steck 2019) on binary interactions, over items with >= ``min_item_ratings``.

    With ``min_rating`` > 1 it learns from likes only (ratings >= ``min_rating``) and reads a
    user's likes as their history.
    """

    name = "ease"

    def __init__(
        self, regularization: float = 100.0, min_item_ratings: int = 10, min_rating: int = 1
    ) -> None:
        self.regularization = regularization
        self.min_item_ratings = min_item_ratings
        self.min_rating = min_rating

    def _fit(self, data: Dataset) -> None:
        interactions = binarise(data.rating_matrix, self.min_rating)
        counts = np.asarray(interactions.sum(axis=0)).ravel()
        self._columns = np.flatnonzero(counts >= self.min_item_ratings)
        seen = interactions[:, self._columns]
        gram = item_gram(seen.tocsr())
        gram[np.diag_indices_from(gram)] += self.regularization
        # In place: the gram is symmetric, so its transpose (a Fortran-ordered view) is the same
        # matrix and LAPACK inverts it without a copy; at 17k items each copy is 2.4 GB.
        precision = linalg.inv(gram.T, overwrite_a=True, check_finite=False)
        del gram
        precision /= -np.diag(precision)  # B = P / -diag(P), column by column
        precision[np.diag_indices_from(precision)] = 0.0
        # C order: the inverse of the transposed view comes back in Fortran order, and a
        # sparse history times a Fortran-ordered matrix copies the whole matrix every call.
        self._weights = np.ascontiguousarray(precision, dtype=np.float32)
        self._n_items = data.n_items

    def score_ratings(self, ratings: sparse.csr_matrix) -> np.ndarray:
        """Scores for users given as rating rows (binarised with ``min_rating``)."""
        return self.score_history(binarise(ratings, self.min_rating))

    def score_history(self, history: sparse.csr_matrix) -> np.ndarray:
        """Scores for users given as binary histories; items outside the model (too few
        ratings to learn from) are NaN: no opinion, not a low score."""
        scores = np.full((history.shape[0], self._n_items), np.nan, dtype=np.float32)
        scores[:, self._columns] = history[:, self._columns] @ self._weights
        return scores


class IALSRecommender(Recommender):
    """Implicit ALS (``implicit``) on confidence ``1 + alpha * (rating / 10)``."""

    name = "ials"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int = 42,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed

    def _fit(self, data: Dataset) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        confidence = data.rating_matrix.copy()
        confidence.data = self.alpha * confidence.data / 10.0
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; BLAS threads hurt
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.seed,
            )
            model.fit(confidence.tocsr(), show_progress=False)
        self._user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self._item_factors = np.asarray(model.item_factors, dtype=np.float32)

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """Learned factors of known users."""
        return self._user_factors[user_idx]

    def score_vectors(self, user_vectors: np.ndarray) -> np.ndarray:
        """Scores for users given as factor vectors (each row alone: batch-independent)."""
        return row_products(user_vectors, self._item_factors)

    @cached_property
    def _item_gram(self) -> np.ndarray:
        return (self._item_factors.T @ self._item_factors).astype(np.float64)

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """The factor vector of a user not seen in training, from their ratings.

        One exact ALS user step against the fixed item factors (the equation ``implicit``
        solves): ``(YᵀY + Yᵀ(Cu - I)Y + λI) x = YᵀCu p`` with ``Cu = alpha * rating / 10``.
        """
        factors = self._item_factors
        if len(item_idx) == 0:
            return np.zeros(factors.shape[1], dtype=np.float32)
        rated = factors[np.asarray(item_idx)].astype(np.float64)
        confidence = self.alpha * np.asarray(ratings, dtype=np.float64) / 10.0
        system = self._item_gram + self.regularization * np.eye(factors.shape[1])
        system += (rated * (confidence - 1.0)[:, None]).T @ rated
        target = (rated * confidence[:, None]).sum(axis=0)
        return np.linalg.solve(system, target).astype(np.float32)
