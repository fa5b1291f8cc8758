"""Loaders: good files parse; bad files raise errors naming file, row, column, expectation."""

import gzip
from pathlib import Path

import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.data.dataset import Dataset
from otaku.data.sources import (
    combine_ratings,
    load_anime,
    load_rating_files,
    load_ratings,
    load_synopses,
)
from otaku.data.validation import DataValidationError

ANIME_HEADER = "MAL_ID,Name,Score,Genres,English name,Type,Episodes,Aired,Members\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_anime_parses_unknown_as_missing(tmp_path: Path) -> None:
    path = write(
        tmp_path / "anime.csv",
        ANIME_HEADER
        + '1,Cowboy Bebop,8.78,"Action, Sci-Fi",Cowboy Bebop,TV,26,"Apr 3, 1998",100\n'
        + "5,Mystery,Unknown,Unknown,Unknown,Movie,Unknown,Unknown,7\n",
    )
    catalog = load_anime(path)
    assert catalog[Columns.anime_id].tolist() == [1, 5]
    assert catalog[Columns.genres].tolist() == [["Action", "Sci-Fi"], []]
    assert catalog.loc[0, Columns.start_year] == 1998
    assert catalog[Columns.score].isna().tolist() == [False, True]
    assert catalog.loc[1, Columns.english_name] == ""


def test_anime_bad_number_names_row_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "anime.csv",
        ANIME_HEADER + "1,A,8.1,Action,A,TV,12,2001,10\n2,B,eight,Action,B,TV,12,2001,10\n",
    )
    with pytest.raises(DataValidationError) as caught:
        load_anime(path)
    message = str(caught.value)
    assert "anime.csv" in message and "data row 2" in message and "'Score'" in message
    assert "'eight'" in message


def test_anime_missing_id_column(tmp_path: Path) -> None:
    path = write(tmp_path / "anime.csv", "Name,Score\nA,1\n")
    with pytest.raises(DataValidationError, match="MAL_ID"):
        load_anime(path)


def test_anime_duplicate_id(tmp_path: Path) -> None:
    path = write(tmp_path / "anime.csv", "MAL_ID,Name\n1,A\n1,B\n")
    with pytest.raises(DataValidationError, match="appears twice") as caught:
        load_anime(path)
    assert caught.value.row == 2


def test_synopses_accept_2021_spelling_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "anime_with_synopsis.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('MAL_ID,Name,Score,Genders,sypnopsis\n1,A,8,Action,"A story. Another."\n')
    assert load_synopses(path).to_dict() == {1: "A story. Another."}
    plain = write(tmp_path / "s.csv", "MAL_ID,Name,Genres,synopsis\n2,B,Drama,Text\n")
    assert load_synopses(plain).to_dict() == {2: "Text"}


def test_ratings_non_integer_id(tmp_path: Path) -> None:
    path = write(tmp_path / "rating_complete.csv", "user_id,anime_id,rating\n1,10,5\n1,abc,7\n")
    with pytest.raises(DataValidationError) as caught:
        load_ratings(path)
    assert caught.value.row == 2 and caught.value.column == "anime_id"
    assert "expected an integer" in str(caught.value)


@pytest.mark.parametrize("bad", ["0", "11", "-1"])
def test_ratings_out_of_range(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path / "r.csv", f"user_id,anime_id,rating\n1,10,5\n1,11,{bad}\n")
    with pytest.raises(DataValidationError, match=r"1\.\.10") as caught:
        load_ratings(path)
    assert caught.value.row == 2 and caught.value.column == "rating"


def test_ratings_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user_id,anime_id\n1,10\n")
    with pytest.raises(DataValidationError, match="rating"):
        load_ratings(path)


def test_animelist_keeps_completed_and_scored(tmp_path: Path) -> None:
    path = write(
        tmp_path / "animelist.csv",
        "user_id,anime_id,rating,watching_status,watched_episodes\n"
        "0,1,9,2,26\n0,2,0,2,12\n0,3,8,1,4\n0,4,7,2,1\n",
    )
    ratings = load_ratings(path)
    assert ratings[[Columns.anime_id, Columns.rating]].values.tolist() == [[1, 9], [4, 7]]


def test_duplicates_keep_last_or_error(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", "user_id,anime_id,rating\n1,10,5\n1,11,6\n")
    second = write(tmp_path / "b.csv", "user_id,anime_id,rating\n1,10,9\n")
    combined = load_rating_files([first, second])
    assert combined.set_index(Columns.anime_id)[Columns.rating].to_dict() == {10: 9, 11: 6}
    with pytest.raises(DataValidationError, match="duplicate") as caught:
        load_rating_files([first, second], duplicates="error")
    assert "b.csv" in str(caught.value) and caught.value.row == 1


def test_duplicate_within_one_file_names_row(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 1], "anime_id": [3, 4, 3], "rating": [1, 2, 3]})
    with pytest.raises(DataValidationError) as caught:
        combine_ratings([frame], [tmp_path / "r.csv"], duplicates="error")
    assert caught.value.row == 3


def test_not_a_csv_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="file not found"):
        load_ratings(tmp_path / "nope.csv")
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(DataValidationError, match="not a readable CSV"):
        load_ratings(broken)


def test_dataset_drops_and_counts_unknown_anime(tmp_path: Path) -> None:
    catalog = load_anime(write(tmp_path / "anime.csv", "MAL_ID,Name\n1,A\n2,B\n"))
    ratings = pd.DataFrame({"user_id": [5, 5, 6], "anime_id": [1, 99, 2], "rating": [7, 8, 9]})
    data = Dataset.construct(catalog, ratings)
    assert data.dropped_unknown_anime == 1
    assert data.n_users == 2 and len(data.ratings) == 2
    assert data.rating_matrix.toarray().tolist() == [[7, 0], [0, 9]]


def test_ratings_are_read_in_parts_and_errors_name_the_row_in_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otaku.data import sources

    monkeypatch.setattr(sources, "RATING_CHUNK_ROWS", 10)
    rows = [
        f"{user},{anime},{1 + (user + anime) % 10}" for user in range(5) for anime in range(1, 6)
    ]
    path = tmp_path / "rating_complete.csv"
    path.write_text("user_id,anime_id,rating\n" + "\n".join(rows) + "\n")
    ratings = load_ratings(path)
    assert len(ratings) == 25 and ratings["user_id"].tolist() == sorted(ratings["user_id"])
    rows[22] = "4,3,eleven"
    path.write_text("user_id,anime_id,rating\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataValidationError) as error:
        load_ratings(path)
    assert error.value.row == 23 and error.value.column == "rating"
    assert "data row 23 (line 24)" in str(error.value) and "'eleven'" in str(error.value)


def test_an_empty_rating_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rating_complete.csv"
    path.write_text("")
    with pytest.raises(DataValidationError, match="not a readable CSV file"):
        load_ratings(path)
