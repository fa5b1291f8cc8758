"""Train on a small real subset, log to a real (SQLite) MLflow registry, load it back."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from otaku.config import Settings
from otaku.data.files import DataSources
from otaku.jobs.evaluate import run_evaluation
from otaku.jobs.train import train_bundle
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.engine import Engine
from otaku.pipeline.training import TrainConfig
from otaku.storage.registry import champion_version, load_registered

pytestmark = pytest.mark.integration


def test_train_register_and_load_back(
    real_subset: DataSources, quick_config: TrainConfig, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    outcome = train_bundle(settings, real_subset, quick_config)
    meta = outcome.bundle.metadata
    assert meta["simulated"] is False
    assert meta["counts"]["users"] == real_subset.load().n_users > 50
    assert meta["text_model"] is not None
    assert len(meta["data_hash"]) == 16 and meta["libraries"]["lightgbm"] != "not installed"
    assert outcome.registered is not None and outcome.registered.is_champion
    assert champion_version(settings) == outcome.registered.version
    assert np.any(outcome.bundle.models.components.text_embeddings)
    # the fixed hold-out is left out of training (retrain compares champions on it)
    held = meta["holdout"]["held_out_ratings"]
    assert held > 0 and meta["holdout"]["rule"] == "user-and-pair-hash/2"
    trained = outcome.bundle.models.components.ratings.nnz
    assert trained == meta["counts"]["ratings"] - held
    # what the budgets chose is on record (no budget in this config: every user)
    assert meta["preset"] == quick_config.preset
    assert meta["samples"]["ratings"] == trained
    assert meta["samples"]["lightfm_users"] == meta["samples"]["users"]
    assert meta["samples"]["rating_model_ratings"] == trained

    from_disk = Bundle.load(outcome.directory)
    from_registry = load_registered(settings)
    assert from_registry.version == outcome.bundle.version
    users = outcome.bundle.models.components.state.users.external_ids[:5]
    engines = [Engine(b.models, b.metadata) for b in (outcome.bundle, from_disk, from_registry)]
    for name in engines[0].strategies:
        for user in users:
            pages = [e.recommend_for_user(int(user), k=10, strategy=name) for e in engines]
            ids = [[item.anime.anime_id for item in page.items] for page in pages]
            assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 10
    assert meta["ranker_features"] == from_disk.models.feature_names

    second = train_bundle(settings, real_subset, quick_config)
    assert second.registered is not None and not second.registered.is_champion
    assert champion_version(settings) == outcome.registered.version  # promotion is retrain's
    assert second.bundle.metadata["data_hash"] == meta["data_hash"]


def test_training_is_reproducible(
    real_subset: DataSources, quick_config: TrainConfig, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    config = replace(quick_config)
    first = train_bundle(settings, real_subset, config, register=False)
    second = train_bundle(settings, real_subset, config, register=False)
    users = first.bundle.models.components.state.users.external_ids[:10]
    engines = [Engine(run.bundle.models, run.bundle.metadata) for run in (first, second)]
    for user in users:
        a, b = (e.recommend_for_user(int(user), k=10).items for e in engines)
        assert [x.anime.anime_id for x in a] == [x.anime.anime_id for x in b]


def test_evaluate_on_real_subset(
    real_subset: DataSources, quick_config: TrainConfig, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    result, markdown, table = run_evaluation(
        settings,
        real_subset,
        quick_config,
        tmp_path / "reports",
        seed_users=5,
        lightfm_own=True,
        quick_grids=True,
    )
    by_model = {row.model: row for row in result.ranking}
    assert {"popular", "itemknn", "ease", "ials", "lightfm", "default", "seed"} <= set(by_model)
    assert set(result.tuning) == {"ease", "ease_liked", "ials", "itemknn"}
    for name, tuned in result.tuning.items():  # the chosen point is the grid's best
        best = max(point["ndcg"] for point in tuned["tried"])
        assert tuned["validation_ndcg"] == best, name
    seed_row = by_model["seed"]
    assert seed_row.default_minus_this is not None
    assert set(seed_row.ndcg_by_user) <= set(by_model["default"].ndcg_by_user)
    assert by_model["default"].users > 0 and by_model["seed"].users == 5
    for row in result.ranking:
        assert 0.0 <= row.precision <= 1.0 and 0.0 <= row.ndcg <= 1.0
    # real users' held-out likes are far from random: popularity alone finds some
    assert by_model["popular"].ndcg > 0.05
    assert set(result.lightfm_own) == {"precision@10", "recall@10"}
    assert 0.0 < result.rating["median_ae"] < 3.0
    assert result.info["simulated"] is False
    assert "| ease | baseline |" in markdown.read_text()
    assert table.exists()
