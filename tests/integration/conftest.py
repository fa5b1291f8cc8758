"""Integration fixtures: a small real subset of the shared MAL data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.data.files import DataSources


@pytest.fixture(scope="session")
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
