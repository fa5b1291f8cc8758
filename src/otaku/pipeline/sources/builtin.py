"""The built-in candidate sources: EASE^R, iALS, LightFM, item-kNN, synopsis text, popularity."""

import numpy as np

from otaku.columns import LIKED_THRESHOLD
from otaku.data.dataset import binarise
from otaku.models.base import row_products
from otaku.models.baselines import EASERecommender, IALSRecommender, ItemKNNRecommender
from otaku.models.lightfm import LightFMRecommender
from otaku.pipeline.sources.base import (
    CandidateSource,
    FitInputs,
    UserContext,
    register_source,
)


def _params(source: CandidateSource) -> dict[str, object]:
    return dict(source.spec.params)


@register_source("ease")
class EASESource(CandidateSource):
    """EASE^R on binarised ratings (``min_rating``: 1 = everything rated, 7 = likes only).
    Params: ``regularization``, ``min_item_ratings``, ``min_rating``."""

    model: EASERecommender

    def fit(self, inputs: FitInputs) -> None:
        self.model = EASERecommender(**_params(self)).fit(inputs.data)  # type: ignore[arg-type]

    def score(self, users: UserContext) -> np.ndarray:
        return self.model.score_ratings(users.ratings)


@register_source("ials")
class IALSSource(CandidateSource):
    """Implicit ALS; new users folded in by one exact ALS step. Params: ``factors``,
    ``regularization``, ``alpha``, ``iterations``."""

    model: IALSRecommender

    def fit(self, inputs: FitInputs) -> None:
        params = {"seed": inputs.seed, **_params(self)}
        self.model = IALSRecommender(**params).fit(inputs.data)  # type: ignore[arg-type]

    def score(self, users: UserContext) -> np.ndarray:
        return self.model.score_vectors(users.vectors_of(self.name))

    def known_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        return self.model.user_vectors(user_idx)

    def fold_in(self, items: np.ndarray, ratings: np.ndarray, features: np.ndarray) -> np.ndarray:
        return self.model.fold_in(items, ratings)


@register_source("lightfm")
class LightFMSource(CandidateSource):
    """The hybrid LightFM model fitted before the sources (its item embeddings are half of
    the item vectors); new users folded in from their features."""

    model: LightFMRecommender

    def fit(self, inputs: FitInputs) -> None:
        if inputs.lightfm is None:
            raise ValueError(f"source {self.name!r} needs the fitted LightFM model")
        self.model = inputs.lightfm

    def score(self, users: UserContext) -> np.ndarray:
        return self.model.score_vectors(users.vectors_of(self.name))

    def known_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        return self.model.user_embeddings[user_idx]

    def fold_in(self, items: np.ndarray, ratings: np.ndarray, features: np.ndarray) -> np.ndarray:
        return self.model.vectors_from_features(features[None, :])[0]


@register_source("itemknn")
class ItemKNNSource(CandidateSource):
    """Item-kNN over binary histories. Params: ``neighbours``."""

    model: ItemKNNRecommender

    def fit(self, inputs: FitInputs) -> None:
        self.model = ItemKNNRecommender(**_params(self)).fit(inputs.data)  # type: ignore[arg-type]

    def score(self, users: UserContext) -> np.ndarray:
        return self.model.score_history(users.seen)


@register_source("text")
class TextSource(CandidateSource):
    """Cosine of each synopsis embedding with the mean embedding of the user's likes (of
    everything they rated when they like nothing). Params: ``dimensions`` (0, the default,
    keeps the encoder's width; the built-in list uses 192).

    Reduced embeddings keep their leading principal directions (uncentred, so dot products
    are approximated, not shifted): every request reads every item's vector, and at the
    encoder's 384 dimensions this source was the slowest of a known user's request.
    """

    embeddings: np.ndarray
    kept_variance: float  # share of the embeddings' energy the kept directions hold

    def fit(self, inputs: FitInputs) -> None:
        dimensions = int(self.spec.params.get("dimensions", 0))
        self.embeddings, self.kept_variance = principal_directions(
            inputs.text_embeddings, dimensions
        )

    def score(self, users: UserContext) -> np.ndarray:
        liked = binarise(users.ratings, LIKED_THRESHOLD)
        profile = np.asarray(liked @ self.embeddings)
        no_like = np.flatnonzero(np.diff(liked.indptr) == 0)
        if len(no_like):
            profile[no_like] = binarise(users.ratings[no_like]) @ self.embeddings
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        profile = np.divide(profile, norms, out=np.zeros_like(profile), where=norms > 0)
        return np.asarray(row_products(profile, self.embeddings), dtype=np.float32)


def principal_directions(vectors: np.ndarray, dimensions: int) -> tuple[np.ndarray, float]:
    """``vectors`` (rows) expressed in their ``dimensions`` leading right singular
    directions, C-ordered float32, and the share of the squared norm they keep (1.0 when
    nothing is dropped: ``dimensions`` 0 or at least the width)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if dimensions < 0:
        raise ValueError(f"'dimensions' must be 0 (keep all) or positive, got {dimensions}")
    if dimensions == 0 or dimensions >= vectors.shape[1] or not vectors.any():
        return np.ascontiguousarray(vectors), 1.0
    _, singular, directions = np.linalg.svd(vectors.astype(np.float64), full_matrices=False)
    energy = singular**2
    kept = float(energy[:dimensions].sum() / energy.sum())
    reduced = vectors.astype(np.float64) @ directions[:dimensions].T
    return np.ascontiguousarray(reduced, dtype=np.float32), kept


@register_source("popular")
class PopularSource(CandidateSource):
    """log(1 + number of ratings): the same for everyone."""

    log_counts: np.ndarray

    def fit(self, inputs: FitInputs) -> None:
        self.log_counts = np.log1p(inputs.data.item_counts.astype(np.float32))

    def score(self, users: UserContext) -> np.ndarray:
        return np.tile(self.log_counts, (users.n_users, 1))
