"""`otaku data synth`: MAL's shape (ratings per user, the 1..10 distribution, popularity skew),
the same files for the same seed, loadable by the real loader, and memory that does not grow
with the number of users (blocks are written as they are made)."""

import hashlib
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.data import synth
from otaku.data.demo import MAL_RATING_SHARES
from otaku.data.files import DataSources


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("synth")
    synth.write_synthetic(out, 2500, seed=11)
    return pd.read_csv(out / "rating_complete.csv")


def test_ratings_per_user_are_heavy_tailed_around_mals_mean(ratings: pd.DataFrame) -> None:
    counts = ratings.groupby("user_id").size()
    assert len(counts) == 2500
    assert abs(counts.mean() / synth.MAL_MEAN_RATINGS - 1.0) < 0.15
    assert counts.median() < 0.75 * counts.mean()  # a long right tail
    assert counts.quantile(0.99) > 5 * counts.median()
    assert not ratings.duplicated(["user_id", "anime_id"]).any()


def test_the_rating_distribution_is_mals(ratings: pd.DataFrame) -> None:
    shares = ratings["rating"].value_counts(normalize=True).sort_index()
    assert shares.index.tolist() == list(range(1, 11))
    np.testing.assert_allclose(shares.to_numpy(), MAL_RATING_SHARES, atol=0.01)


def test_popularity_is_skewed_like_mal(ratings: pd.DataFrame) -> None:
    per_anime = ratings.groupby("anime_id").size().sort_values(ascending=False)
    top_share = per_anime.head(100).sum() / len(ratings)
    assert 0.12 < top_share < 0.22  # MAL 2020: about 17% of ratings go to the top 100


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_files_and_the_loader_reads_them(tmp_path: Path) -> None:
    first = synth.write_synthetic(tmp_path / "a", 300, seed=5)
    synth.write_synthetic(tmp_path / "b", 300, seed=5)
    synth.write_synthetic(tmp_path / "c", 300, seed=6)
    name = "rating_complete.csv"
    assert _digest(tmp_path / "a" / name) == _digest(tmp_path / "b" / name)
    assert _digest(tmp_path / "a" / name) != _digest(tmp_path / "c" / name)
    data = DataSources.from_directory(tmp_path / "a").load()
    assert data.n_users == 300 and len(data.ratings) == first["ratings"]
    assert data.dropped_unknown_anime == 0 and (data.synopses != "").all()
    assert "SIMULATED" in (tmp_path / "a" / "SYNTHETIC.txt").read_text()


def test_a_prefix_of_users_does_not_depend_on_how_many_follow(tmp_path: Path) -> None:
    synth.write_synthetic(tmp_path / "small", 1200, seed=2)
    synth.write_synthetic(tmp_path / "large", 2100, seed=2)
    small = pd.read_csv(tmp_path / "small" / "rating_complete.csv")
    large = pd.read_csv(tmp_path / "large" / "rating_complete.csv")
    pd.testing.assert_frame_equal(small, large[large["user_id"] < 1200].reset_index(drop=True))


def _peak_bytes(out: Path, users: int) -> int:
    tracemalloc.start()
    synth.write_synthetic(out, users, seed=3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_memory_stays_flat_as_users_grow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "BLOCK_USERS", 100)
    few = _peak_bytes(tmp_path / "few", 200)
    many = _peak_bytes(tmp_path / "many", 1500)  # 7.5 times the users
    assert many < 1.3 * few


def test_zero_users_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        synth.write_synthetic(tmp_path, 0)


def test_real_synopses_copied_compressed_are_read(tmp_path: Path) -> None:
    import gzip

    source = tmp_path / "anime_with_synopsis.csv.gz"
    anime_id = int(synth.load_demo_catalog()[Columns.anime_id].iloc[0])
    with gzip.open(source, "wt") as handle:
        handle.write(f'MAL_ID,Name,synopsis\n{anime_id},X,"A real synopsis."\n')
    synth.write_synthetic(tmp_path / "out", 50, seed=1, synopses=source)
    data = DataSources.from_directory(tmp_path / "out").load()
    assert "A real synopsis." in set(data.synopses)
