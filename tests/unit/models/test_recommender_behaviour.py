"""One behaviour mixin every recommender passes (the implicit / RecTools habit)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from otaku.data.dataset import Dataset
from otaku.models.base import NotFittedError, Recommender
from otaku.models.baselines import (
    EASERecommender,
    IALSRecommender,
    ItemKNNRecommender,
    PopularRecommender,
)
from otaku.models.lightfm import LightFMConfig, LightFMRecommender
from otaku.pipeline.ranker import HybridRankerRecommender
from otaku.pipeline.seed import SeedRecommender
from otaku.pipeline.training import TrainConfig


class RecommenderBehaviour:
    """Every Recommender: fit returns self; recommend before fit raises; never returns
    watched anime; unknown users are handled; a save/load round trip keeps outputs."""

    factory: Callable[[TrainConfig], Recommender]

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, small_dataset: Dataset, quick_config: TrainConfig) -> Recommender:
        model = cls.factory(quick_config)
        assert model.fit(small_dataset) is model
        return model

    def test_recommend_before_fit_raises(self, quick_config: TrainConfig) -> None:
        with pytest.raises(NotFittedError):
            type(self).factory(quick_config).recommend([1], k=5)

    def test_shapes_and_no_watched(self, fitted: Recommender, small_dataset: Dataset) -> None:
        users = small_dataset.users.external_ids[:12]
        items, scores = fitted.recommend(users, k=10)
        assert items.shape == scores.shape == (12, 10)
        for user, row in zip(users, items, strict=True):
            watched = set(
                small_dataset.items.to_external(
                    small_dataset.history(int(small_dataset.users.to_internal([user])[0]))[0]
                )
            )
            assert not watched & set(row.tolist())
            assert len(set(row.tolist())) == 10  # no duplicates
            assert set(row.tolist()) <= set(small_dataset.items.external_ids.tolist())
        assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first

    def test_unknown_user_gets_popular(self, fitted: Recommender, small_dataset: Dataset) -> None:
        items, _ = fitted.recommend([-12345], k=5)
        counts = small_dataset.item_counts[small_dataset.items.to_internal(items[0])]
        np.testing.assert_array_equal(counts, np.sort(small_dataset.item_counts)[::-1][:5])

    def test_bad_k(self, fitted: Recommender) -> None:
        with pytest.raises(ValueError, match="k must be"):
            fitted.recommend([1], k=0)

    def test_save_load_round_trip(
        self, fitted: Recommender, small_dataset: Dataset, tmp_path: Path
    ) -> None:
        users = small_dataset.users.external_ids[:8]
        before = fitted.recommend(users, k=7)
        fitted.save(tmp_path / "model.joblib")
        loaded = type(fitted).load(tmp_path / "model.joblib")
        after = loaded.recommend(users, k=7)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_allclose(before[1], after[1])


class TestPopular(RecommenderBehaviour):
    factory = staticmethod(lambda config: PopularRecommender())


class TestItemKNN(RecommenderBehaviour):
    factory = staticmethod(lambda config: ItemKNNRecommender(neighbours=20))


class TestEASE(RecommenderBehaviour):
    factory = staticmethod(lambda config: EASERecommender(min_item_ratings=1))


class TestIALS(RecommenderBehaviour):
    factory = staticmethod(lambda config: IALSRecommender(factors=8, iterations=3))


class TestLightFM(RecommenderBehaviour):
    factory = staticmethod(
        lambda config: LightFMRecommender(LightFMConfig(epochs=3, no_components=8))
    )


class TestSeed(RecommenderBehaviour):
    factory = staticmethod(lambda config: SeedRecommender(config.components))


class TestDefault(RecommenderBehaviour):
    factory = staticmethod(lambda config: HybridRankerRecommender(config.components, config.ranker))


def test_watched_filter_can_be_disabled(small_dataset: Dataset) -> None:
    model = PopularRecommender().fit(small_dataset)
    top_five = set(np.argsort(-small_dataset.item_counts, kind="stable")[:5].tolist())
    user_idx = next(
        u for u in range(small_dataset.n_users) if top_five & set(small_dataset.history(u)[0])
    )
    user = small_dataset.users.external_ids[user_idx]
    unfiltered, _ = model.recommend([user], k=5, filter_watched=False)
    filtered, _ = model.recommend([user], k=5)
    counts = small_dataset.item_counts[small_dataset.items.to_internal(unfiltered[0])]
    np.testing.assert_array_equal(counts, np.sort(small_dataset.item_counts)[::-1][:5])
    watched = set(small_dataset.items.to_external(small_dataset.history(user_idx)[0]).tolist())
    assert watched & set(unfiltered[0].tolist())
    assert not watched & set(filtered[0].tolist())
