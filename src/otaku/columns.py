"""Column names used across the package: spell each one here, once."""

from typing import Final


class Columns:
    """Canonical column names of the internal tables."""

    user_id: Final = "user_id"
    anime_id: Final = "anime_id"
    rating: Final = "rating"
    user_idx: Final = "user_idx"
    item_idx: Final = "item_idx"
    name: Final = "name"
    english_name: Final = "english_name"
    japanese_name: Final = "japanese_name"
    genres: Final = "genres"
    type: Final = "type"
    # Numeric MAL columns keep their original names (they are also item features).
    score: Final = "Score"
    episodes: Final = "Episodes"
    members: Final = "Members"
    source: Final = "source"
    age_rating: Final = "age_rating"
    start_year: Final = "start_year"
    synopsis: Final = "synopsis"
    watching_status: Final = "watching_status"


# MAL 2020 `anime.csv` numeric columns used as item features (after min-max scaling).
MAL_NUMERIC_COLUMNS: Final = (
    "Score",
    "Episodes",
    "Ranked",
    "Popularity",
    "Members",
    "Favorites",
    "Watching",
    "Completed",
    "On-Hold",
    "Dropped",
    "Plan to Watch",
    "Score-10",
    "Score-9",
    "Score-8",
    "Score-7",
    "Score-6",
    "Score-5",
    "Score-4",
    "Score-3",
    "Score-2",
    "Score-1",
)

# MAL `watching_status` code for "completed".
COMPLETED_STATUS: Final = 2
RATING_MIN: Final = 1
RATING_MAX: Final = 10
# A rating of 7 or more is a like: the protocol's relevant set, the sources' "liked" history.
LIKED_THRESHOLD: Final = 7
# The one range of user and anime ids, for ids that are stored and ids that are accepted:
# integers a JSON client reads exactly (2^53 - 1), well inside SQLite's and PostgreSQL's BIGINT.
ID_MIN: Final = 0
ID_MAX: Final = 2**53 - 1
