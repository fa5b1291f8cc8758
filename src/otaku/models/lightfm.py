"""LightFM hybrid model (WARP): identity + feature matrices for users and items.

Its item representations are the 64-d item embeddings used by the rating model and the
similarity search.
"""

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from otaku.data.dataset import Dataset
from otaku.data.sampling import users_within_budget
from otaku.features.item import build_item_features, genre_matrix, genre_vocabulary
from otaku.features.user import build_user_features
from otaku.models.base import Recommender, row_products
from otaku.progress import track


@dataclass(frozen=True)
class LightFMConfig:
    """LightFM hyper-parameters (the reference's defaults).

    ``max_interactions`` bounds the cost (one WARP epoch visits every interaction): when
    the data has more, a seeded sample of whole user histories within the budget trains the
    model, and every other user gets the features-only embedding new users get (fold-in).
    None trains on everything, as the reference did.
    """

    no_components: int = 64
    k: int = 15
    epochs: int = 50
    loss: str = "warp"
    learning_rate: float = 0.05
    item_alpha: float = 0.0
    user_alpha: float = 0.0
    seed: int = 42
    num_threads: int = max(1, os.cpu_count() or 1)
    max_interactions: int | None = None


def with_identity(features: np.ndarray) -> sparse.csr_matrix:
    """``[I | features]`` as CSR: LightFM's identity-plus-features layout."""
    identity = sparse.identity(features.shape[0], dtype=np.float32, format="csr")
    return sparse.hstack([identity, sparse.csr_matrix(features)], format="csr", dtype=np.float32)


@dataclass(frozen=True)
class HybridInputs:
    """LightFM inputs derived from a dataset."""

    interactions: sparse.coo_matrix
    user_features: sparse.csr_matrix
    item_features: sparse.csr_matrix
    every_user_features: np.ndarray  # the features alone, of every user of the dataset


def hybrid_inputs(data: Dataset, users: np.ndarray | None = None) -> HybridInputs:
    """Interactions and identity + feature matrices for a dataset, or for some of its users
    (rows in the order of ``users``)."""
    genres = genre_vocabulary(data.catalog)
    item_genres = genre_matrix(data.catalog, genres)
    user_features = build_user_features(data.rating_matrix, item_genres)
    item_features = build_item_features(data.catalog).values
    seen, trained_features = data.seen_matrix, user_features
    if users is not None:
        seen, trained_features = seen[users], user_features[users]
    return HybridInputs(
        seen.tocoo(),
        with_identity(trained_features),
        with_identity(item_features),
        user_features,
    )


def fit_lightfm(
    config: LightFMConfig,
    interactions: sparse.coo_matrix,
    user_features: sparse.csr_matrix,
    item_features: sparse.csr_matrix,
    label: str = "LightFM epochs",
) -> Any:
    """A LightFM model trained for ``config.epochs`` epochs with a progress bar."""
    from lightfm import LightFM

    model = LightFM(
        no_components=config.no_components,
        k=config.k,
        loss=config.loss,
        learning_rate=config.learning_rate,
        item_alpha=config.item_alpha,
        user_alpha=config.user_alpha,
        random_state=config.seed,
    )
    for _ in track(range(config.epochs), label, total=config.epochs):
        model.fit_partial(
            interactions,
            user_features=user_features,
            item_features=item_features,
            epochs=1,
            num_threads=config.num_threads,
        )
    return model


class LightFMRecommender(Recommender):
    """LightFM hybrid recommender; exposes item embeddings and feature-based user vectors."""

    name = "lightfm"

    def __init__(self, config: LightFMConfig | None = None) -> None:
        self.config = config or LightFMConfig()

    def _fit(self, data: Dataset) -> None:
        counts = np.diff(data.seen_matrix.indptr)
        trained = users_within_budget(counts, self.config.max_interactions, self.config.seed)
        inputs = hybrid_inputs(data, trained)
        model = fit_lightfm(
            self.config, inputs.interactions, inputs.user_features, inputs.item_features
        )
        item_bias, item_embedding = model.get_item_representations(inputs.item_features)
        _, trained_embedding = model.get_user_representations(inputs.user_features)
        self.item_bias = np.asarray(item_bias, dtype=np.float32)
        self.item_embeddings = np.asarray(item_embedding, dtype=np.float32)
        # Feature rows of the user embedding matrix: fold-in for users not seen in training.
        self.user_feature_embeddings = np.asarray(
            model.user_embeddings[len(trained) :], dtype=np.float32
        )
        self.user_embeddings = self.vectors_from_features(inputs.every_user_features)
        self.user_embeddings[trained] = trained_embedding
        self.trained_users = len(trained)

    def vectors_from_features(self, user_features: np.ndarray) -> np.ndarray:
        """Embeddings of users known only by their features (no identity row): fold-in."""
        return np.asarray(user_features, dtype=np.float32) @ self.user_feature_embeddings

    def score_vectors(self, user_vectors: np.ndarray) -> np.ndarray:
        """Scores of all items for users given as embeddings (rows; each row alone:
        batch-independent)."""
        return row_products(user_vectors, self.item_embeddings) + self.item_bias
