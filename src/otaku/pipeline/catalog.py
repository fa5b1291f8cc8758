"""The catalog as preloaded, contiguous arrays: what the engine reads on every request instead
of a pandas frame (built once when a bundle is loaded)."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from otaku.columns import Columns

ADULT_GENRE = "Hentai"
ADULT_AGE_RATING = "Rx - Hentai"


@dataclass(frozen=True)
class AnimeInfo:
    """What the service shows of one anime."""

    anime_id: int
    name: str
    english_name: str | None
    japanese_name: str | None
    type: str | None
    episodes: int | None
    mal_score: float | None
    members: int | None
    start_year: int | None
    age_rating: str | None
    genres: tuple[str, ...]
    synopsis: str | None


def _text(catalog: pd.DataFrame, column: str) -> list[str | None]:
    if column not in catalog.columns:
        return [None] * len(catalog)
    return [value if isinstance(value, str) and value else None for value in catalog[column]]


def catalog_numbers(catalog: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric catalog column as float32 (NaN where missing, all NaN when absent)."""
    if column not in catalog.columns:
        return np.full(len(catalog), np.nan, dtype=np.float32)
    return catalog[column].to_numpy(dtype=np.float32, na_value=np.nan)


def _optional_int(value: float) -> int | None:
    return None if np.isnan(value) else int(value)


@dataclass(frozen=True)
class ItemTable:
    """Item-aligned arrays (row ``i`` is internal item ``i``)."""

    anime_ids: np.ndarray
    names: list[str]
    english_names: list[str | None]
    japanese_names: list[str | None]
    types: np.ndarray  # object array of str ("" when unknown)
    age_ratings: list[str | None]
    genre_names: list[str]
    genres: np.ndarray  # items x genres, bool
    mal_scores: np.ndarray
    episodes: np.ndarray
    members: np.ndarray
    start_years: np.ndarray
    synopses: list[str | None]
    adult: np.ndarray  # bool

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.anime_ids)

    @cached_property
    def type_names(self) -> list[str]:
        """Anime types present in the catalog."""
        return sorted({value for value in self.types if value})

    @classmethod
    def build(
        cls,
        catalog: pd.DataFrame,
        genre_names: list[str],
        item_genres: np.ndarray,
        synopses: np.ndarray | None = None,
    ) -> "ItemTable":
        """Arrays of a catalog (rows already in internal item order)."""
        genres = np.ascontiguousarray(item_genres > 0)
        age_ratings = _text(catalog, Columns.age_rating)
        adult = np.array([rating == ADULT_AGE_RATING for rating in age_ratings], dtype=bool)
        if ADULT_GENRE in genre_names:
            adult |= genres[:, genre_names.index(ADULT_GENRE)]
        texts = _text(catalog, Columns.synopsis) if synopses is None else list(synopses)
        return cls(
            anime_ids=catalog[Columns.anime_id].to_numpy(dtype=np.int64),
            names=[str(name) for name in catalog[Columns.name]],
            english_names=_text(catalog, Columns.english_name),
            japanese_names=_text(catalog, Columns.japanese_name),
            types=np.array([value or "" for value in _text(catalog, Columns.type)], dtype=object),
            age_ratings=age_ratings,
            genre_names=list(genre_names),
            genres=genres,
            mal_scores=catalog_numbers(catalog, Columns.score),
            episodes=catalog_numbers(catalog, Columns.episodes),
            members=catalog_numbers(catalog, Columns.members),
            start_years=catalog_numbers(catalog, Columns.start_year),
            synopses=[text if isinstance(text, str) and text else None for text in texts],
            adult=adult,
        )

    @cached_property
    def _genre_tuples(self) -> list[tuple[str, ...]]:
        return [tuple(self.genre_names[g] for g in np.flatnonzero(row)) for row in self.genres]

    def genres_of(self, item: int) -> tuple[str, ...]:
        """Genre names of one item."""
        return self._genre_tuples[item]

    @cached_property
    def _infos(self) -> dict[int, AnimeInfo]:
        return {}

    def info(self, item: int) -> AnimeInfo:
        """The description of one item (internal index), built once per item."""
        known = self._infos.get(item)
        if known is None:
            known = self._infos[item] = self._describe(item)
        return known

    def _describe(self, item: int) -> AnimeInfo:
        return AnimeInfo(
            anime_id=int(self.anime_ids[item]),
            name=self.names[item],
            english_name=self.english_names[item],
            japanese_name=self.japanese_names[item],
            type=str(self.types[item]) or None,
            episodes=_optional_int(float(self.episodes[item])),
            mal_score=None
            if np.isnan(self.mal_scores[item])
            else round(float(self.mal_scores[item]), 2),
            members=_optional_int(float(self.members[item])),
            start_year=_optional_int(float(self.start_years[item])),
            age_rating=self.age_ratings[item],
            genres=self.genres_of(item),
            synopsis=self.synopses[item],
        )
