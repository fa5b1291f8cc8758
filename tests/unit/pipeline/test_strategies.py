"""Every strategy ranks through the one shared path (Rankings): the seed is the reference
algorithm; every strategy and every single-source baseline never shows watched or filtered
anime, fills its page, and ranks best first; candidates and the ranker's features agree."""

import itertools

import numpy as np
import pytest

from otaku.columns import LIKED_THRESHOLD
from otaku.pipeline.candidates import candidate_features, feature_names
from otaku.pipeline.engine import Engine
from otaku.pipeline.filters import InvalidInputError, ItemFilter
from otaku.pipeline.pages import Stopwatch
from otaku.pipeline.profiles import NewUser
from otaku.pipeline.ranker import relevance
from otaku.pipeline.rankings import RANKING_DEPTH
from otaku.pipeline.sources import known_context
from otaku.pipeline.strategies import STRATEGY_TYPES, SourceStrategy
from otaku.pipeline.training import TrainedModels


@pytest.fixture(scope="module")
def with_baselines(trained: TrainedModels) -> Engine:
    """An engine that also ranks with each candidate source alone (as `otaku evaluate`)."""
    engine = Engine(trained, {"version": "baselines"})
    for source in trained.components.sources.values():
        engine.rankings.add(SourceStrategy(source, engine.served.popular_order))
    return engine


def _every_strategy(trained: TrainedModels) -> list[str]:
    return [*STRATEGY_TYPES, *trained.components.sources]


def test_the_registry_serves_default_first(engine: Engine) -> None:
    assert engine.strategies[0] == "default" and "seed" in engine.strategies
    assert all(engine.strategy_descriptions().values())
    with pytest.raises(InvalidInputError) as error:
        engine.recommend_for_user(int(engine.known_user_ids[0]), strategy="nope")
    assert error.value.field == "strategy"


def test_seed_is_the_reference_algorithm(engine: Engine) -> None:
    vectors = engine.item_vectors / np.linalg.norm(engine.item_vectors, axis=1, keepdims=True)
    checked = 0
    for user_id in engine.known_user_ids[:10]:
        profile = engine.known_profile(int(user_id))
        page = engine.recommend_for_user(int(user_id), k=10, strategy="seed")
        predicted = engine.predicted_ratings(profile.features)
        unwatched = np.setdiff1d(np.arange(engine.table.n_items), profile.rated_items)
        pool = unwatched[np.argsort(-predicted[unwatched], kind="stable")[:1000]]
        if profile.ratings.max() >= LIKED_THRESHOLD:
            favourites = profile.rated_items[profile.ratings == profile.ratings.max()]
            target = vectors[favourites].mean(axis=0)
            similar = pool[np.argsort(-(vectors[pool] @ target), kind="stable")[:10]]
            expected = similar[np.argsort(-predicted[similar], kind="stable")]
            checked += 1
        else:
            expected = pool[:10]
        assert [item.anime.anime_id for item in page.items] == engine.table.anime_ids[
            expected
        ].tolist()
        np.testing.assert_allclose([i.score for i in page.items], predicted[expected], rtol=1e-5)
    assert checked > 0


@pytest.mark.parametrize("index", range(9))
def test_every_strategy_and_baseline_obeys_the_shared_rules(
    with_baselines: Engine, trained: TrainedModels, index: int
) -> None:
    names = _every_strategy(trained)
    if index >= len(names):
        pytest.skip("fewer strategies than slots")
    name = names[index]
    movies = ItemFilter(types=("Movie",))
    for user_id in with_baselines.known_user_ids[:6]:
        rated = {item.anime_id for item, _ in with_baselines.history(int(user_id))}
        page = with_baselines.recommend_for_user(int(user_id), k=15, strategy=name)
        ids = [item.anime.anime_id for item in page.items]
        scores = [item.score for item in page.items]
        assert len(ids) == len(set(ids)) == 15, name
        assert not rated & set(ids), name
        assert all(a >= b - 1e-6 for a, b in itertools.pairwise(scores)), name
        filtered = with_baselines.recommend_for_user(int(user_id), 10, 0, movies, name)
        assert filtered.items and all(item.anime.type == "Movie" for item in filtered.items)
        assert not rated & {item.anime.anime_id for item in filtered.items}


def test_the_reference_protocol_can_see_watched_anime(with_baselines: Engine) -> None:
    popular_first = int(with_baselines.table.anime_ids[with_baselines.served.popular_order[0]])
    user_id = next(
        int(u)
        for u in with_baselines.known_user_ids
        if popular_first in {a.anime_id for a, _ in with_baselines.history(int(u))}
    )
    unfiltered = with_baselines.unfiltered_ranking(user_id, "popular", 5)
    served = [
        i.anime.anime_id
        for i in with_baselines.recommend_for_user(user_id, 5, strategy="popular").items
    ]
    assert unfiltered[0] == popular_first and popular_first not in served


def test_candidates_respect_allowed_and_match_feature_names(trained: TrainedModels) -> None:
    parts = trained.components
    users = np.arange(6)
    context = known_context(parts.sources, parts.ratings, parts.user_features, users)
    allowed = np.asarray(context.seen.todense()) == 0
    allowed[:, :50] = False  # as if a filter removed the first 50 anime
    candidates, features = candidate_features(
        parts.sources, parts.item_numbers, parts.item_genres, context, allowed
    )
    quota = sum(spec.quota for spec in (s.spec for s in parts.sources.values()))
    names = feature_names(list(parts.sources))
    assert names == trained.feature_names
    for row, (chosen, matrix) in enumerate(zip(candidates, features, strict=True)):
        assert allowed[row, chosen].all()
        assert len(set(chosen.tolist())) == len(chosen) <= quota
        assert matrix.shape == (len(chosen), len(names))


def test_a_cold_user_draws_with_the_cold_quotas(engine: Engine, trained: TrainedModels) -> None:
    cold = engine.new_profile(NewUser())
    context = cold.context(engine.table.n_items)
    allowed = np.ones((1, engine.table.n_items), dtype=bool)
    parts = trained.components
    candidates, _ = candidate_features(
        parts.sources, parts.item_numbers, parts.item_genres, context, allowed
    )
    cold_quota = sum(s.spec.cold_quota for s in parts.sources.values())
    assert 0 < len(candidates[0]) <= cold_quota
    counts = parts.state.popularity
    threshold = np.sort(counts)[::-1][149]  # the 150 most rated (ties may go either way)
    assert (counts[candidates[0]] >= threshold).sum() >= 150


def test_a_batch_ranks_every_user_exactly_as_alone(engine: Engine) -> None:
    known = [engine.known_profile(int(u)) for u in engine.known_user_ids[:30]]
    rated = {int(a): 8 for a in engine.table.anime_ids[[3, 11, 40]]}
    profiles = [
        *known,
        engine.new_profile(NewUser(ratings=rated)),
        engine.new_profile(NewUser(preferences={engine.genres[0]: 1.0})),
        engine.new_profile(NewUser()),
    ]
    batch = engine.rankings.deep_rankings(profiles, "default", Stopwatch())
    for profile, (items, scores) in zip(profiles, batch, strict=True):
        alone = engine.rankings.ranking(
            profile, "default", RANKING_DEPTH, ItemFilter(), Stopwatch(), remember=False
        )
        assert len(items) == RANKING_DEPTH
        # bit for bit: a stored (batch-computed) ranking is served as the one computed alone
        assert items.tolist() == alone[0].tolist() and scores.tobytes() == alone[1].tobytes()


def test_only_a_depth_independent_strategy_ranks_in_batches(engine: Engine) -> None:
    with pytest.raises(ValueError, match="depth-independent"):
        engine.rankings.deep_rankings(
            [engine.known_profile(int(engine.known_user_ids[0]))], "seed", Stopwatch()
        )


def test_relevance_is_binary_like() -> None:
    assert relevance(np.array([1, 6, 7, 10])).tolist() == [0, 0, 1, 1]
