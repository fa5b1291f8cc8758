"""Title lookup and item filters on a tiny inline catalog."""

import numpy as np
import pandas as pd
import pytest

from otaku.columns import Columns
from otaku.features.item import genre_matrix, genre_vocabulary
from otaku.pipeline.catalog import ItemTable
from otaku.pipeline.filters import InvalidInputError, ItemFilter
from otaku.pipeline.titles import TitleIndex, TitleNotFoundError, normalise_title


@pytest.fixture(scope="module")
def table() -> ItemTable:
    catalog = pd.DataFrame(
        {
            Columns.anime_id: [1, 2, 3, 4, 5],
            Columns.name: [
                "Cowboy Bebop",
                "Pokémon",
                "Shingeki no Kyojin",
                "Kiss x Sis",
                "Boku no Pico",
            ],
            Columns.english_name: ["Cowboy Bebop", "Pokémon", "Attack on Titan", "", ""],
            Columns.japanese_name: [
                "カウボーイビバップ",
                "ポケットモンスター",
                "進撃の巨人",
                "",
                "",
            ],
            Columns.type: ["TV", "TV", "TV", "OVA", "OVA"],
            Columns.age_rating: [
                "R - 17+ (violence & profanity)",
                "PG - Children",
                "R - 17+ (violence & profanity)",
                "R+ - Mild Nudity",
                "Rx - Hentai",
            ],
            Columns.genres: [
                ["Action", "Sci-Fi"],
                ["Adventure", "Kids"],
                ["Action", "Drama"],
                ["Comedy", "Hentai"],
                ["Comedy"],
            ],
            Columns.start_year: [1998.0, 1997.0, 2013.0, 2010.0, np.nan],
            Columns.score: [8.78, 7.4, 8.48, np.nan, 4.0],
            Columns.members: [1.2e6, 5e5, 2.5e6, 1e5, 2e5],
        }
    )
    genres = genre_vocabulary(catalog)
    return ItemTable.build(catalog, genres, genre_matrix(catalog, genres))


def test_normalisation_ignores_case_accents_and_spacing() -> None:
    assert normalise_title("  POKÉMON   ") == "pokemon"
    assert normalise_title("ポケットモンスター") == "ポケットモンスター"  # kana voicing kept


@pytest.mark.parametrize(
    ("query", "item"),
    [
        ("cowboy bebop", 0),
        ("pokemon", 1),
        ("ATTACK ON TITAN", 2),
        ("進撃の巨人", 2),
        ("カウボーイビバップ", 0),
    ],
)
def test_exact_lookup_in_every_language(table: ItemTable, query: str, item: int) -> None:
    match = TitleIndex(table).find(query)
    assert match.item == item
    assert match.exact


def test_typos_above_the_threshold_are_forgiven(table: ItemTable) -> None:
    match = TitleIndex(table).find("Cowbo Bebop")
    assert match.item == 0
    assert not match.exact
    assert match.similarity > 0.9


def test_no_match_suggests_names(table: ItemTable) -> None:
    with pytest.raises(TitleNotFoundError) as error:
        TitleIndex(table).find("Shingeki no Bahamut")
    assert error.value.suggestions
    assert "Shingeki no Kyojin" in error.value.suggestions
    assert "did you mean" in str(error.value)


def test_search_finds_partial_names_best_known_first(table: ItemTable) -> None:
    matches = TitleIndex(table).search("titan")
    assert matches[0].item == 2


def test_adult_titles_are_hidden_unless_asked_for(table: ItemTable) -> None:
    assert ItemFilter().mask(table).tolist() == [True, True, True, False, False]
    assert ItemFilter(include_adult=True).mask(table).all()


def test_each_filter(table: ItemTable) -> None:
    def passing(item_filter: ItemFilter) -> list[int]:
        return np.flatnonzero(item_filter.mask(table)).tolist()

    assert passing(ItemFilter(include_genres=("Action",))) == [0, 2]
    assert passing(ItemFilter(exclude_genres=("Action",))) == [1]
    assert passing(ItemFilter(types=("OVA",), include_adult=True)) == [3, 4]
    assert passing(ItemFilter(min_score=8.0)) == [0, 2]
    assert passing(ItemFilter(year_from=1998, year_to=2012, include_adult=True)) == [0, 3]


def test_bad_filters_name_the_field(table: ItemTable) -> None:
    with pytest.raises(InvalidInputError) as error:
        ItemFilter(include_genres=("Cooking",)).mask(table)
    assert error.value.field == "include_genres"
    with pytest.raises(InvalidInputError) as error:
        ItemFilter(year_from=2010, year_to=2000)
    assert error.value.field == "year_from"
