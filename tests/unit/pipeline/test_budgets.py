"""Training within budgets: the sampled and batched paths the full-size run takes (LightFM on
a user sample with fold-in for everyone else, the rating model on a user sample read in
batches) give a bundle that answers all four questions."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from otaku.data.dataset import Dataset
from otaku.models.lightfm import LightFMConfig, LightFMRecommender
from otaku.models.rating import FeatureRows, rows
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.components import text_embeddings_for
from otaku.pipeline.engine import Engine
from otaku.pipeline.presets import PRESETS, UnknownPresetError, preset_config
from otaku.pipeline.profiles import NewUser
from otaku.pipeline.training import TrainConfig, TrainedModels, fit_all


@pytest.fixture(scope="module")
def budgeted(small_dataset: Dataset, quick_config: TrainConfig) -> TrainedModels:
    third = len(small_dataset.ratings) // 3
    components = quick_config.components
    config = replace(
        quick_config,
        components=replace(
            components,
            lightfm=replace(components.lightfm, max_interactions=third),
            rating=replace(components.rating, max_ratings=third),
        ),
    )
    return fit_all(small_dataset, config, text_embeddings_for(small_dataset, None, None))


def test_budgets_train_on_user_samples(budgeted: TrainedModels, small_dataset: Dataset) -> None:
    samples = budgeted.samples
    third = len(small_dataset.ratings) // 3
    assert 0 < samples["lightfm_users"] < samples["users"] == small_dataset.n_users
    assert 0 < samples["rating_model_users"] < samples["users"]
    assert 0 < samples["rating_model_ratings"] <= third


def test_users_outside_the_lightfm_sample_are_folded_in_from_features(
    budgeted: TrainedModels,
) -> None:
    parts = budgeted.components
    lightfm = parts.lightfm
    folded = lightfm.vectors_from_features(parts.user_features)
    same = np.isclose(lightfm.user_embeddings, folded, atol=1e-5).all(axis=1)
    # everyone the sample left out has exactly the features-only embedding
    assert same.sum() >= parts.state.users.external_ids.size - lightfm.trained_users
    assert not same.all()  # and the sampled users their learned one


def test_a_budgeted_bundle_answers_the_four_questions(
    budgeted: TrainedModels, tmp_path: Path
) -> None:
    saved = Bundle(budgeted, {"version": "budget"}).save(tmp_path / "budget")
    engine = Engine(Bundle.load(saved).models, {"version": "budget"})
    for user_id in engine.known_user_ids[:20]:
        assert len(engine.recommend_for_user(int(user_id), k=10).items) == 10
    assert len(engine.recommend_for_new_user(NewUser(), k=10).items) == 10
    genres = engine.recommend_for_new_user(NewUser(preferences={"Action": 1.0}), k=10)
    assert all("Action" in item.anime.genres for item in genres.items)
    liked = {int(anime_id): 9 for anime_id in engine.table.anime_ids[:3]}
    assert len(engine.recommend_for_new_user(NewUser(ratings=liked), k=10).items) == 10
    similar = engine.similar(int(engine.table.anime_ids[0]), k=10)
    assert len(similar.items) == 10


def test_feature_rows_are_the_rows_of_the_dense_matrix() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.random((5, 3), dtype=np.float32), rng.random((7, 4), dtype=np.float32)
    user_idx, item_idx = rng.integers(0, 5, 50), rng.integers(0, 7, 50)
    dense = rows(users[user_idx], items[item_idx])
    batches = FeatureRows(users, items, user_idx, item_idx)
    assert len(batches) == 50
    assert np.array_equal(batches[10:30], dense[10:30])
    assert np.array_equal(batches[[3, 1, 4]], dense[[3, 1, 4]])
    assert np.array_equal(batches[7], dense[7])


def test_presets_are_named_configurations() -> None:
    reference = preset_config("reference", seed=42)
    assert reference.components.lightfm.epochs == 50
    assert reference.components.rating.num_boost_round == 2000
    assert reference.components.rating.max_ratings is None
    fast = preset_config("fast", seed=7)
    assert fast.preset == "fast" and fast.components.seed == 7
    assert fast.components.lightfm.max_interactions is not None
    assert set(PRESETS) >= {"fast", "reference", "quick"}
    with pytest.raises(UnknownPresetError, match="fast, reference, quick"):
        preset_config("turbo", seed=42)


def test_lightfm_without_a_budget_learns_every_user(small_dataset: Dataset) -> None:
    model = LightFMRecommender(LightFMConfig(epochs=1, no_components=8, num_threads=1))
    model.fit(small_dataset)
    assert model.trained_users == small_dataset.n_users
