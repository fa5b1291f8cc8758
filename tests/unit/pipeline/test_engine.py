"""The engine answers the four questions: known users, new users (nothing, genres, ratings),
similar anime; with paging, filters, explanations and clear errors."""

import numpy as np
import pytest

from otaku.models.rating import rows
from otaku.pipeline.engine import Engine, UnknownAnimeError
from otaku.pipeline.filters import InvalidInputError, ItemFilter
from otaku.pipeline.profiles import NewUser, UnknownUserError


def _ids(page_items: list) -> list[int]:
    return [item.anime.anime_id for item in page_items]


def _user_with_likes(engine: Engine) -> int:
    for user_id in engine.known_user_ids:
        profile = engine.known_profile(int(user_id))
        if profile.ratings.max() >= 7:
            return int(user_id)
    raise AssertionError("the test data has no user with a like")


@pytest.mark.parametrize("strategy", ["default", "seed"])
def test_known_user_never_gets_what_they_rated(engine: Engine, strategy: str) -> None:
    for user_id in engine.known_user_ids[:15]:
        rated = {item.anime_id for item, _ in engine.history(int(user_id))}
        page = engine.recommend_for_user(int(user_id), k=20, strategy=strategy)
        recommended = _ids(page.items)
        assert len(recommended) == 20
        assert len(set(recommended)) == 20
        assert not rated & set(recommended)


def test_pages_follow_each_other(engine: Engine) -> None:
    user_id = int(engine.known_user_ids[3])
    whole = _ids(engine.recommend_for_user(user_id, k=30).items)
    first = _ids(engine.recommend_for_user(user_id, k=15).items)
    second = _ids(engine.recommend_for_user(user_id, k=15, offset=15).items)
    assert first + second == whole


@pytest.mark.parametrize(("k", "offset"), [(0, 0), (101, 0), (10, -1), (10, 901)])
def test_page_bounds_are_checked(engine: Engine, k: int, offset: int) -> None:
    with pytest.raises(InvalidInputError) as error:
        engine.recommend_for_user(int(engine.known_user_ids[0]), k=k, offset=offset)
    assert error.value.field in {"k", "offset"}


def test_unknown_ids_raise_lookup_errors(engine: Engine) -> None:
    with pytest.raises(UnknownUserError, match="POST /v1/recommendations"):
        engine.recommend_for_user(-12345)
    with pytest.raises(UnknownAnimeError):
        engine.similar(-1)


@pytest.mark.parametrize("strategy", ["default", "seed"])
def test_filters_hold_for_every_item(engine: Engine, strategy: str) -> None:
    item_filter = ItemFilter(
        include_genres=("Action", "Comedy"),
        exclude_genres=("Romance",),
        types=("TV",),
        min_score=7.5,
    )
    page = engine.recommend_for_user(
        int(engine.known_user_ids[1]),
        k=10,
        item_filter=item_filter,
        strategy=strategy,
    )
    assert page.items
    for item in page.items:
        genres = set(item.anime.genres)
        assert genres & {"Action", "Comedy"}
        assert "Romance" not in genres
        assert item.anime.type == "TV"
        assert item.anime.mal_score is not None and item.anime.mal_score >= 7.5


def test_unknown_filter_values_name_the_field(engine: Engine) -> None:
    with pytest.raises(InvalidInputError) as error:
        engine.recommend_for_user(
            int(engine.known_user_ids[0]), item_filter=ItemFilter(types=("Cartoon",))
        )
    assert error.value.field == "types"
    assert "Cartoon" in error.value.message


def test_known_user_explanations_cite_their_own_ratings(engine: Engine) -> None:
    user_id = _user_with_likes(engine)
    rated = {info.name: rating for info, rating in engine.history(user_id)}
    page = engine.recommend_for_user(user_id, k=20)
    cited = [item.explanation for item in page.items if item.explanation.startswith("like ")]
    assert cited, "a user with likes should get at least one 'like X' reason"
    for reason in cited:
        name, _, rating = reason.removeprefix("like ").rpartition(", which you rated ")
        assert rated[name] == int(rating)


def test_new_user_without_anything_gets_popular_picks(engine: Engine) -> None:
    page = engine.recommend_for_new_user(NewUser(), k=10)
    assert len(page.items) == 10
    assert {item.explanation for item in page.items} == {"popular on MyAnimeList"}
    for item in page.items:
        assert item.predicted_rating == pytest.approx(
            engine.cold_predictions[engine.item_of(item.anime.anime_id)]
        )


@pytest.mark.parametrize("strategy", ["default", "seed"])
def test_genre_preferences_restrict_and_explain(engine: Engine, strategy: str) -> None:
    preferences = {"Action": 1.0, "Romance": 0.4}
    page = engine.recommend_for_new_user(
        NewUser(preferences=preferences),
        k=10,
        strategy=strategy,
    )
    assert len(page.items) == 10
    for item in page.items:
        assert set(item.anime.genres) & set(preferences)
        assert item.explanation.startswith("matches your genres: ")
        cited = item.explanation.removeprefix("matches your genres: ").split(", ")
        assert set(cited) <= set(preferences) & set(item.anime.genres)


def test_bad_new_user_input_names_the_field(engine: Engine) -> None:
    with pytest.raises(InvalidInputError) as error:
        engine.recommend_for_new_user(NewUser(preferences={"Cooking": 1.0}))
    assert error.value.field == "preferences.Cooking"
    with pytest.raises(InvalidInputError) as error:
        engine.recommend_for_new_user(NewUser(ratings={-7: 8}))
    assert error.value.field == "ratings.-7"
    anime_id = int(engine.table.anime_ids[0])
    with pytest.raises(InvalidInputError) as error:
        engine.recommend_for_new_user(NewUser(ratings={anime_id: 11}))
    assert error.value.field == f"ratings.{anime_id}"


def test_a_known_history_folded_in_recommends_like_the_known_user(engine: Engine) -> None:
    user_id = _user_with_likes(engine)
    known = engine.known_profile(user_id)
    anime_ids = engine.table.anime_ids[known.rated_items]
    folded = engine.new_profile(
        NewUser(ratings=dict(zip(anime_ids.tolist(), known.ratings.tolist(), strict=True)))
    )
    np.testing.assert_allclose(folded.features, known.features, atol=1e-6)
    cosine = folded.vectors["ials"] @ known.vectors["ials"]
    cosine /= np.linalg.norm(folded.vectors["ials"]) * np.linalg.norm(known.vectors["ials"])
    assert cosine > 0.8  # one ALS step against fixed item factors ≈ the trained user factors
    as_new = _ids(
        engine.recommend_for_new_user(
            NewUser(ratings=dict(zip(anime_ids.tolist(), known.ratings.tolist(), strict=True))),
            k=20,
        ).items
    )
    as_known = _ids(engine.recommend_for_user(user_id, k=20).items)
    assert not set(as_new) & set(anime_ids.tolist())
    assert len(set(as_new) & set(as_known)) >= 10


def test_rating_changes_change_predictions(engine: Engine) -> None:
    anime_ids = engine.table.anime_ids[:5].tolist()
    before = engine.new_profile(NewUser(ratings=dict.fromkeys(anime_ids, 9)))
    after = engine.new_profile(NewUser(ratings={**dict.fromkeys(anime_ids, 9), anime_ids[0]: 2}))
    assert not np.array_equal(before.features, after.features)
    rating_model = engine.parts.rating_model
    assert rating_model is not None
    expected = rating_model.predict(rows(after.features, engine.item_vectors))
    np.testing.assert_allclose(engine.predicted_ratings(after.features), expected, rtol=1e-6)


def test_similar_anime_are_the_nearest_by_cosine(engine: Engine) -> None:
    query = engine.item_of(int(engine.table.anime_ids[0]))
    page = engine.similar(int(engine.table.anime_ids[0]), k=10)
    similarity = engine.unit_vectors @ engine.unit_vectors[query]
    similarity[query] = -np.inf
    expected = engine.table.anime_ids[np.argsort(-similarity, kind="stable")[:10]]
    assert _ids(page.items) == expected.tolist()
    assert all(item.explanation for item in page.items)
    assert [item.score for item in page.items] == sorted(
        (item.score for item in page.items), reverse=True
    )


@pytest.mark.parametrize("strategy", ["default", "seed"])
def test_filters_that_leave_nothing_give_an_empty_page(engine: Engine, strategy: str) -> None:
    impossible = ItemFilter(min_score=10.0, types=("TV",), include_genres=("Kids",))
    page = engine.recommend_for_new_user(NewUser(), item_filter=impossible, strategy=strategy)
    assert page.items == []


def test_repeated_requests_reuse_the_ranking_and_new_ratings_do_not(engine: Engine) -> None:
    anime_ids = [int(a) for a in engine.table.anime_ids[10:14]]
    user = NewUser(ratings=dict.fromkeys(anime_ids, 8))
    first = _ids(engine.recommend_for_new_user(user, k=10).items)
    hits = engine.cache_stats()["ranking_hits"]
    assert _ids(engine.recommend_for_new_user(user, k=10).items) == first
    assert _ids(engine.recommend_for_new_user(user, k=5, offset=5).items) == first[5:]
    assert engine.cache_stats()["ranking_hits"] == hits + 2
    rated_more = NewUser(ratings={**user.ratings, int(engine.table.anime_ids[20]): 10})
    misses = engine.cache_stats()["ranking_misses"]
    engine.recommend_for_new_user(rated_more, k=10)
    assert engine.cache_stats()["ranking_misses"] == misses + 1
