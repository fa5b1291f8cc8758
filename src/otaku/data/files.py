"""Where a dataset comes from: explicit paths, a directory of Kaggle files, or the demo."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from otaku.data.dataset import Dataset
from otaku.data.demo import DEMO_LABEL, load_demo_catalog, simulate_ratings
from otaku.data.sources import DuplicatePolicy, load_anime, load_rating_files, load_synopses

if TYPE_CHECKING:
    from otaku.cluster import Cluster

_CATALOG_NAMES = ("anime.csv", "anime.csv.gz")
_SYNOPSIS_NAMES = (
    "anime_with_synopsis.csv",
    "anime_with_synopsis.csv.gz",
    "synopsis.csv",
    "synopsis.csv.gz",
)
_RATING_NAMES = (
    "rating_complete.csv",
    "rating_complete.csv.gz",
    "ratings.csv",
    "ratings.csv.gz",
    "animelist.csv",
    "animelist.csv.gz",
)


class MissingDataError(FileNotFoundError):
    """The data directory lacks a required file."""


@dataclass(frozen=True)
class DataSources:
    """The files of one dataset, or the demo (``catalog is None``)."""

    catalog: Path | None = None
    synopses: Path | None = None
    ratings: tuple[Path, ...] = field(default_factory=tuple)
    demo_users: int = 2000
    seed: int = 42
    duplicates: DuplicatePolicy = "keep_last"

    @property
    def is_demo(self) -> bool:
        """True for the simulated demo dataset."""
        return self.catalog is None

    @property
    def label(self) -> str:
        """A human description of the data (the demo says it is simulated)."""
        if self.is_demo:
            return DEMO_LABEL
        return ", ".join(str(path) for path in (self.catalog, self.synopses, *self.ratings) if path)

    @classmethod
    def from_directory(cls, directory: Path) -> "DataSources":
        """Find the Kaggle files in ``directory``: anime.csv, the synopses, the ratings
        (rating_complete.csv preferred over animelist.csv)."""
        if not directory.is_dir():
            raise MissingDataError(f"data directory {directory} does not exist")
        catalog = _first(directory, _CATALOG_NAMES)
        ratings = _first(directory, _RATING_NAMES)
        missing = [
            name
            for name, path in (("anime.csv", catalog), ("rating_complete.csv", ratings))
            if path is None
        ]
        if missing:
            raise MissingDataError(
                f"{directory} lacks {', '.join(missing)}; expected the Kaggle 'Anime "
                "Recommendation Database 2020' files (run `otaku data fetch`, or copy "
                "anime.csv, anime_with_synopsis.csv and rating_complete.csv there)"
            )
        assert ratings is not None
        return cls(catalog, _first(directory, _SYNOPSIS_NAMES), (ratings,))

    def load(self, cluster: "Cluster | None" = None) -> Dataset:
        """Read, validate and assemble the dataset (rating files parsed on ``cluster``'s
        workers when given)."""
        if self.catalog is None:
            catalog = load_demo_catalog()
            return Dataset.construct(catalog, simulate_ratings(catalog, self.demo_users, self.seed))
        if not self.ratings:
            raise MissingDataError("at least one rating file is required")
        catalog = load_anime(self.catalog)
        synopses = load_synopses(self.synopses) if self.synopses else None
        if cluster is not None:
            from otaku.data.distributed import load_rating_files_on_cluster

            ratings = load_rating_files_on_cluster(
                cluster.client, list(self.ratings), self.duplicates
            )
        else:
            ratings = load_rating_files(list(self.ratings), self.duplicates)
        return Dataset.construct(catalog, ratings, synopses)


def _first(directory: Path, names: tuple[str, ...]) -> Path | None:
    return next((directory / name for name in names if (directory / name).exists()), None)
