"""The UI's form reading: weights, rated rows, and an error naming each bad field."""

from otaku.ui.client import ApiError
from otaku.ui.forms import genre_bars, parse_new_user_form

GENRES = ["Action", "Slice of Life", "Sci-Fi"]
STRATEGIES = ["default", "seed"]


def test_weights_and_rated_titles_are_read() -> None:
    form = parse_new_user_form(
        {
            "go": "1",
            "w:Action": "1",
            "w:Slice of Life": "0.4",
            "w:Sci-Fi": "",
            "title1": " Cowboy Bebop ",
            "rating1": "10",
            "title2": "",
            "rating2": "7",
            "k": "20",
            "strategy": "seed",
        },
        GENRES,
        STRATEGIES,
    )
    assert form.submitted and not form.errors
    assert form.preferences == {"Action": 1.0, "Slice of Life": 0.4}
    assert form.rated_titles == [("Cowboy Bebop", 10)]
    assert (form.k, form.strategy) == (20, "seed")
    assert form.weight("Slice of Life") == "0.4" and form.weight("Sci-Fi") == ""


def test_each_bad_field_is_named() -> None:
    form = parse_new_user_form(
        {"w:Action": "2", "w:Cooking": "1", "w:Sci-Fi": "lots", "title3": "Naruto"},
        GENRES,
        STRATEGIES,
    )
    assert form.errors == [
        "Weight of Action: expected a number from 0 to 1, got '2'.",
        "Genre 'Cooking' is not one the model knows.",
        "Weight of Sci-Fi: expected a number from 0 to 1, got 'lots'.",
        "Rated anime 3 (Naruto): choose a rating from 1 to 10.",
    ]
    assert not form.submitted


def test_unknown_page_size_and_strategy_fall_back_to_defaults() -> None:
    form = parse_new_user_form({"k": "1000", "strategy": "magic"}, GENRES, STRATEGIES)
    assert (form.k, form.strategy) == (10, "default")


def test_genre_bars_scale_to_the_largest_share() -> None:
    bars = genre_bars({"Action": 0.5, "Drama": 0.25, "Horror": 0.0, "Comedy": 0.25}, top=2)
    assert bars == [("Action", 0.5, 100.0), ("Comedy", 0.25, 50.0)]
    assert genre_bars({}) == []


def test_api_validation_errors_name_the_field() -> None:
    error = ApiError(
        422,
        {"detail": [{"loc": ["body", "ratings", 0, "rating"], "msg": "Input should be <= 10"}]},
    )
    assert str(error) == "ratings.0.rating: Input should be <= 10"
    missing = ApiError(404, {"detail": "no anime matches 'x'", "suggestions": ["Naruto"]})
    assert missing.suggestions == ["Naruto"] and str(missing) == "no anime matches 'x'"
