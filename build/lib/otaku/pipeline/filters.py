"""Item filters: genres, types, minimum MAL score, start-year range, adult content."""

from dataclasses import dataclass

import numpy as np

from otaku.pipeline.catalog import ItemTable


class InvalidInputError(ValueError):
    """A request value the engine cannot use; ``field`` names it for the caller."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_names(field_name: str, names: tuple[str, ...], known: list[str]) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise InvalidInputError(
            field_name, f"unknown value(s) {unknown}; expected some of {sorted(known)}"
        )


@dataclass(frozen=True)
class ItemFilter:
    """Which anime may be returned.

    An anime passes when it has at least one of ``include_genres`` (if any are given), none of
    ``exclude_genres``, one of ``types`` (if given), a MAL score >= ``min_score`` and a start
    year within ``[year_from, year_to]`` (an unknown score or year fails a set bound). Adult
    anime (genre Hentai or age rating "Rx - Hentai") pass only with ``include_adult``.
    """

    include_genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    min_score: float | None = None
    year_from: int | None = None
    year_to: int | None = None
    include_adult: bool = False

    def __post_init__(self) -> None:
        both = self.year_from is not None and self.year_to is not None
        if both and self.year_from > self.year_to:  # type: ignore[operator]
            raise InvalidInputError(
                "year_from", f"{self.year_from} is after year_to {self.year_to}"
            )

    def _genre_columns(self, table: ItemTable, names: tuple[str, ...]) -> np.ndarray:
        return np.array([table.genre_names.index(name) for name in names], dtype=np.int64)

    def validate(self, table: ItemTable) -> None:
        """Raise :class:`InvalidInputError` for genres or types the catalog does not have."""
        _check_names("include_genres", self.include_genres, table.genre_names)
        _check_names("exclude_genres", self.exclude_genres, table.genre_names)
        _check_names("types", self.types, table.type_names)

    def mask(self, table: ItemTable) -> np.ndarray:
        """Boolean mask over items: True where the anime passes."""
        self.validate(table)
        allowed = np.ones(table.n_items, dtype=bool)
        if not self.include_adult:
            allowed &= ~table.adult
        if self.include_genres:
            allowed &= table.genres[:, self._genre_columns(table, self.include_genres)].any(axis=1)
        if self.exclude_genres:
            allowed &= ~table.genres[:, self._genre_columns(table, self.exclude_genres)].any(axis=1)
        if self.types:
            allowed &= np.isin(table.types, list(self.types))
        if self.min_score is not None:
            allowed &= np.nan_to_num(table.mal_scores, nan=-np.inf) >= self.min_score
        if self.year_from is not None:
            allowed &= np.nan_to_num(table.start_years, nan=-np.inf) >= self.year_from
        if self.year_to is not None:
            allowed &= np.nan_to_num(table.start_years, nan=np.inf) <= self.year_to
        return allowed
