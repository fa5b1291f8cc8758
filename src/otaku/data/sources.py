"""Readers for the Kaggle "Anime Recommendation Database 2020" files (plain or gzip).

Every reader validates what it reads and raises :class:`DataValidationError` naming the file,
row and column; nothing half-parsed is ever returned.
"""

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from otaku.columns import (
    COMPLETED_STATUS,
    ID_MAX,
    ID_MIN,
    MAL_NUMERIC_COLUMNS,
    RATING_MAX,
    RATING_MIN,
    Columns,
)
from otaku.data.pairs import find_duplicates
from otaku.data.validation import (
    DataValidationError,
    check_range,
    fail_at_first,
    parse_integer_column,
    require_columns,
    rows_later,
)

log = logging.getLogger(__name__)

DuplicatePolicy = Literal["keep_last", "error"]
MISSING = "Unknown"
_TEXT_COLUMNS = {
    "Name": Columns.name,
    "English name": Columns.english_name,
    "Japanese name": Columns.japanese_name,
    "Type": Columns.type,
    "Source": Columns.source,
    "Rating": Columns.age_rating,
}
_YEAR = re.compile(r"(?:19|20)\d\d")


def _read_text_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataValidationError(path, "file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as error:
        raise DataValidationError(path, f"not a readable CSV file ({error})") from error


def _id_column(frame: pd.DataFrame, path: Path) -> str:
    for candidate in ("MAL_ID", Columns.anime_id):
        if candidate in frame.columns:
            return candidate
    raise DataValidationError(
        path, f"missing the anime id column ('MAL_ID' or 'anime_id'); found {list(frame.columns)}"
    )


def _unique_ids(ids: pd.Series, path: Path, column: str) -> None:
    fail_at_first(
        ids.duplicated(), path, column, lambda row: f"anime id {ids.iloc[row]} appears twice"
    )


def _split_genres(value: str) -> list[str]:
    if value in ("", MISSING):
        return []
    return [genre.strip() for genre in value.split(",") if genre.strip()]


def _start_year(aired: pd.Series, premiered: pd.Series) -> pd.Series:
    combined = aired.where(aired.str.contains(_YEAR, regex=True), premiered)
    return combined.str.extract(r"((?:19|20)\d\d)", expand=False).astype(float)


def _parse_number_column(original: pd.Series, path: Path, column: str) -> np.ndarray:
    text = original.replace(MISSING, "").str.strip()
    values = pd.to_numeric(text, errors="coerce")
    fail_at_first(
        values.isna() & (text != ""),
        path,
        column,
        lambda row: f"expected a number or 'Unknown', got {original.iloc[row]!r}",
    )
    return values.astype(float).to_numpy()


def parse_catalog(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Turn a raw anime table (all strings) into the canonical catalog frame."""
    id_column = _id_column(raw, path)
    require_columns(raw, path, [id_column, "Name"])
    catalog = pd.DataFrame({Columns.anime_id: parse_integer_column(raw, path, id_column)})
    check_range(catalog[Columns.anime_id], path, id_column, ID_MIN, ID_MAX)
    _unique_ids(catalog[Columns.anime_id], path, id_column)
    for source, target in _TEXT_COLUMNS.items():
        values = raw[source] if source in raw.columns else pd.Series("", index=raw.index)
        catalog[target] = values.replace(MISSING, "").astype(str).to_numpy()
    genres = raw["Genres"] if "Genres" in raw.columns else pd.Series("", index=raw.index)
    catalog[Columns.genres] = [_split_genres(value) for value in genres]
    empty = pd.Series("", index=raw.index)
    catalog[Columns.start_year] = _start_year(
        raw.get("Aired", empty).astype(str), raw.get("Premiered", empty).astype(str)
    ).to_numpy()
    for column in MAL_NUMERIC_COLUMNS:
        if column in raw.columns:
            catalog[column] = _parse_number_column(raw[column], path, column)
    return catalog.reset_index(drop=True)


def load_anime(path: Path) -> pd.DataFrame:
    """Read ``anime.csv`` (35 columns, "Unknown" = missing) or a smaller catalog of that shape."""
    return parse_catalog(_read_text_table(path), path)


def load_synopses(path: Path) -> pd.Series:
    """Read ``anime_with_synopsis.csv`` (``sypnopsis``/``Genders`` or ``synopsis``/``Genres``).

    Returns the synopsis text indexed by anime id.
    """
    raw = _read_text_table(path)
    id_column = _id_column(raw, path)
    text_column = next((c for c in ("synopsis", "sypnopsis") if c in raw.columns), None)
    if text_column is None:
        raise DataValidationError(
            path,
            f"missing the synopsis column ('synopsis' or 'sypnopsis'); found {list(raw.columns)}",
        )
    ids = parse_integer_column(raw, path, id_column)
    _unique_ids(ids, path, id_column)
    return pd.Series(raw[text_column].astype(str).to_numpy(), index=ids.to_numpy(), name="synopsis")


def _integer_column(frame: pd.DataFrame, path: Path, column: str) -> pd.Series:
    if pd.api.types.is_integer_dtype(frame[column]):
        return frame[column].astype(np.int64)
    return parse_integer_column(frame, path, column)


# Rating files are read in parts of this many rows: memory for parsing stays bounded (a
# 57M-row rating_complete.csv is parsed part by part; only the three kept columns are stored).
RATING_CHUNK_ROWS = 2_000_000
_RATING_COLUMNS = (Columns.user_id, Columns.anime_id, Columns.rating)


_UNREADABLE = (
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
    EOFError,  # a truncated .gz
    OSError,
)


def rating_columns_of(path: Path) -> list[str] | None:
    """The columns of a rating file that are read (None: its header has none of them, so
    every column is read and the parser names what is missing)."""
    if not path.exists():
        raise DataValidationError(path, "file not found")
    try:
        header = pd.read_csv(path, nrows=0).columns
    except _UNREADABLE as error:
        raise DataValidationError(path, f"not a readable CSV file ({error})") from error
    wanted = [*_RATING_COLUMNS, "score", Columns.watching_status]
    return [column for column in header if column in wanted] or None


def _rating_chunks(path: Path) -> Iterator[pd.DataFrame]:
    columns = rating_columns_of(path)
    try:
        yield from pd.read_csv(path, usecols=columns, chunksize=RATING_CHUNK_ROWS, low_memory=False)
    except _UNREADABLE as error:
        raise DataValidationError(path, f"not a readable CSV file ({error})") from error


def parse_ratings(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One part of a rating file as compact ``user_id, anime_id, rating`` (animelist rows:
    completed and scored only); errors name the row within the part."""
    if "score" in frame.columns and Columns.rating not in frame.columns:
        frame = frame.rename(columns={"score": Columns.rating})
    require_columns(frame, path, list(_RATING_COLUMNS))
    parsed = pd.DataFrame(
        {column: _integer_column(frame, path, column) for column in _RATING_COLUMNS}
    )
    for column in (Columns.user_id, Columns.anime_id):
        check_range(parsed[column], path, column, ID_MIN, ID_MAX)
    if Columns.watching_status in frame.columns:
        status = _integer_column(frame, path, Columns.watching_status)
        keep = (status == COMPLETED_STATUS) & (parsed[Columns.rating] > 0)
        check_range(parsed[Columns.rating], path, Columns.rating, 0, RATING_MAX)
        parsed = parsed[keep.to_numpy()]
    else:
        check_range(parsed[Columns.rating], path, Columns.rating, RATING_MIN, RATING_MAX)
    return compact_ratings(parsed)


def compact_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Ratings in the narrowest exact dtypes: int8 ratings, int32 ids where every id fits
    (9 bytes a rating instead of 24: 0.5 GB for the 57M of rating_complete.csv)."""
    narrow: dict[str, type[np.signedinteger[Any]]] = {Columns.rating: np.int8}
    for column in (Columns.user_id, Columns.anime_id):
        values = ratings[column]
        if len(values) == 0 or int(values.max()) <= np.iinfo(np.int32).max:
            narrow[column] = np.int32
    return ratings.astype(narrow)


def load_ratings(path: Path) -> pd.DataFrame:
    """Read ``rating_complete.csv`` or ``animelist.csv`` into ``user_id, anime_id, rating``,
    part by part (bounded parsing memory at any size; errors name the row in the whole file).

    An animelist file (it has ``watching_status``) keeps completed rows with a score
    (``watching_status == 2`` and ``rating > 0``): the meaning of rating_complete.
    """
    parts, offset = [], 0
    for chunk in _rating_chunks(path):
        try:
            parts.append(parse_ratings(chunk.reset_index(drop=True), path))
        except DataValidationError as error:
            raise rows_later(error, offset) from None
        offset += len(chunk)
    if not parts:  # a header and no rows: the columns are still checked
        header = pd.read_csv(path, nrows=0)
        return parse_ratings(header, path).reset_index(drop=True)
    return pd.concat(parts, ignore_index=True)


def combine_ratings(
    frames: Sequence[pd.DataFrame],
    sources: Sequence[Path],
    duplicates: DuplicatePolicy = "keep_last",
) -> pd.DataFrame:
    """Concatenate rating tables and apply the duplicate (user, anime) policy.

    ``keep_last``: a later row (later in a file, or in a later file) supersedes an earlier one,
    as a re-rating would. ``error``: any duplicate pair is an error naming its row.
    """
    combined = pd.concat(frames, ignore_index=True) if len(frames) != 1 else frames[0]
    duplicates_found = find_duplicates(
        combined[Columns.user_id].to_numpy(), combined[Columns.anime_id].to_numpy()
    )
    if duplicates_found.count:
        first = int(duplicates_found.repeats[0])
        starts = np.cumsum([0, *(len(frame) for frame in frames)])
        source = int(np.searchsorted(starts, first, side="right")) - 1
        row = first - int(starts[source]) + 1
        where = f"{sources[source]}, data row {row}"
        message = (
            f"{duplicates_found.count} duplicate (user_id, anime_id) pair(s), first at {where} "
            f"(user {combined[Columns.user_id].to_numpy()[first]}, "
            f"anime {combined[Columns.anime_id].to_numpy()[first]})"
        )
        if duplicates == "error":
            raise DataValidationError(sources[source], message, row=row)
        log.warning("%s; policy keep_last: the later rating wins", message)
        keep = np.ones(len(combined), dtype=bool)
        keep[duplicates_found.superseded] = False
        combined = combined[keep]
    return combined.reset_index(drop=True)


def load_rating_files(
    paths: Sequence[Path], duplicates: DuplicatePolicy = "keep_last"
) -> pd.DataFrame:
    """Read and combine one or more rating files (see :func:`combine_ratings`)."""
    if not paths:
        raise ValueError("at least one rating file is required")
    return combine_ratings([load_ratings(path) for path in paths], paths, duplicates)
