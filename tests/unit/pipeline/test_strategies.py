"""The seed strategy follows the reference algorithm; the default strategy's candidates and
features are consistent."""

import numpy as np

from otaku.data.dataset import Dataset
from otaku.pipeline.candidates import (
    FEATURE_NAMES,
    SOURCE_QUOTAS,
    candidate_features,
    known_user_context,
)
from otaku.pipeline.ranker import relevance
from otaku.pipeline.training import TrainedModels


def test_seed_is_the_reference_algorithm(trained: TrainedModels, small_dataset: Dataset) -> None:
    seed = trained.strategies()["seed"]
    parts = trained.components
    vectors = parts.item_vectors / np.linalg.norm(parts.item_vectors, axis=1, keepdims=True)
    checked = 0
    for user_idx in range(10):
        items, ratings = small_dataset.history(user_idx)
        user_id = small_dataset.users.external_ids[user_idx]
        recommended, scores = seed.recommend([user_id], k=10)
        predicted = seed.predict_ratings(parts.user_features[user_idx])  # type: ignore[attr-defined]
        unwatched = np.setdiff1d(np.arange(small_dataset.n_items), items)
        pool = unwatched[np.argsort(-predicted[unwatched], kind="stable")[:1000]]
        if ratings.max() >= 7:
            target = vectors[items[ratings == ratings.max()]].mean(axis=0)
            similar = pool[np.argsort(-(vectors[pool] @ target), kind="stable")[:10]]
            expected = similar[np.argsort(-predicted[similar], kind="stable")]
            checked += 1
        else:
            expected = pool[:10]
        assert small_dataset.items.to_internal(recommended[0]).tolist() == expected.tolist()
        np.testing.assert_allclose(scores[0], predicted[expected], rtol=1e-5)
    assert checked > 0


def test_candidates_exclude_watched_and_match_feature_names(
    trained: TrainedModels, small_dataset: Dataset
) -> None:
    parts = trained.components
    users = np.arange(6)
    candidates, features = candidate_features(parts, known_user_context(parts, users))
    for user, chosen, matrix in zip(users, candidates, features, strict=True):
        watched = set(small_dataset.history(int(user))[0].tolist())
        assert not watched & set(chosen.tolist())
        assert len(set(chosen.tolist())) == len(chosen) <= sum(SOURCE_QUOTAS.values())
        assert matrix.shape == (len(chosen), len(FEATURE_NAMES))


def test_relevance_is_binary_like() -> None:
    assert relevance(np.array([1, 6, 7, 10])).tolist() == [0, 0, 1, 1]
