"""Train on a small real subset, log to a real (SQLite) MLflow registry, load it back."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.config import Settings
from otaku.data.files import DataSources
from otaku.jobs.train import train_bundle
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.training import TrainConfig
from otaku.storage.registry import champion_version, load_registered

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_subset(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> DataSources:
    """60 real users, and the 600 anime they rate most, with real synopses."""
    folder = tmp_path_factory.mktemp("subset")
    ratings = pd.read_csv(shared_data / "mal2020" / "ratings.csv")
    users = np.sort(ratings[Columns.user_id].unique())[:60]
    ratings = ratings[ratings[Columns.user_id].isin(users)]
    top = ratings[Columns.anime_id].value_counts().index[:600]
    ratings = ratings[ratings[Columns.anime_id].isin(top)]
    anime = pd.read_csv(shared_data / "mal2020" / "anime.csv", dtype=str)
    anime = anime[anime["MAL_ID"].astype(int).isin(top)]
    synopses = pd.read_csv(shared_data / "mal2020" / "synopsis.csv", dtype=str)
    synopses = synopses[synopses["MAL_ID"].astype(int).isin(top)]
    anime.to_csv(folder / "anime.csv", index=False)
    synopses.to_csv(folder / "anime_with_synopsis.csv", index=False)
    ratings.to_csv(folder / "rating_complete.csv", index=False)
    return DataSources.from_directory(folder)


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

    from_disk = Bundle.load(outcome.directory)
    from_registry = load_registered(settings)
    assert from_registry.version == outcome.bundle.version
    users = outcome.bundle.models.components.state.users.external_ids[:5]
    for name, model in outcome.bundle.models.strategies().items():
        expected = model.recommend(users, k=10)
        for loaded in (from_disk, from_registry):
            again = loaded.models.strategies()[name].recommend(users, k=10)
            np.testing.assert_array_equal(expected[0], again[0])

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
    a = first.bundle.models.strategies()["default"].recommend(users, k=10)
    b = second.bundle.models.strategies()["default"].recommend(users, k=10)
    np.testing.assert_array_equal(a[0], b[0])
