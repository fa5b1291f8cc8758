"""The recommendation engine: a loaded bundle answering the four questions, fast.

Everything the request path reads is prepared once in :class:`Engine` (contiguous arrays, the
title index, unit item vectors, the cold-start predictions); a request does only vectorised
numpy work plus LightGBM on a few hundred candidate rows. No pandas on the request path.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from otaku.models.rating import on_rating_scale
from otaku.pipeline.catalog import AnimeInfo, ItemTable
from otaku.pipeline.explain import Taste, explain
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.pages import Page, Recommended, Stopwatch, check_page
from otaku.pipeline.profiles import NewUser, Profile, Profiles
from otaku.pipeline.rankings import Rankings
from otaku.pipeline.ratings import RatingPredictions
from otaku.pipeline.seed import normalise_rows
from otaku.pipeline.similar import SimilarItems
from otaku.pipeline.strategies import ServedParts, build_strategies
from otaku.pipeline.titles import TitleIndex, TitleMatch
from otaku.pipeline.training import TrainedModels, check_ranker_features

# Every LightGBM prediction of the served engine uses one thread: requests run side by side,
# and one thread count for all keeps them from waiting on each other (models.rating's gate).
SERVING_THREADS = 1


class UnknownAnimeError(LookupError):
    """The anime id is not in the catalog."""

    def __init__(self, anime_id: int) -> None:
        super().__init__(f"anime {anime_id} is not in the catalog")
        self.anime_id = anime_id


class Engine:
    """Answers the four questions from one trained bundle (thread-safe; read-only models)."""

    def __init__(
        self, models: TrainedModels, metadata: Mapping[str, Any], threads: int = SERVING_THREADS
    ) -> None:
        parts = models.components
        if parts.rating_model is None or parts.rating_model.booster is None:
            raise ValueError("the bundle has no rating model: it cannot be served")
        check_ranker_features(models)
        self.models = models
        self.metadata = dict(metadata)
        self.parts = parts
        self.table = ItemTable.build(parts.catalog, parts.genres, parts.item_genres, parts.synopses)
        self.titles = TitleIndex(self.table)
        self.profiles = Profiles(parts, self.table)
        _ = self.table.genres_of(0)  # per-item genre tuples built now, not by a request
        self.item_vectors = parts.item_vectors
        _ = parts.item_numbers  # derived arrays built now, not by the first request
        self.unit_vectors = normalise_rows(self.item_vectors)
        self.predictions = RatingPredictions(
            parts.rating_model, self.item_vectors, len(parts.genres) + 1, threads
        )
        self.served = ServedParts(
            components=parts,
            ranker=models.ranker,
            predictions=self.predictions,
            unit_vectors=self.unit_vectors,
            popular_order=np.argsort(-parts.state.popularity, kind="stable"),
            threads=threads,
        )
        self.rankings = Rankings(self.table, parts.genres, build_strategies(self.served))
        self._similar = SimilarItems(self.table, self.unit_vectors, self.predictions.cold)

    @property
    def cold_predictions(self) -> np.ndarray:
        """Predicted ratings of every anime for a user with no history."""
        return self.predictions.cold

    @property
    def version(self) -> str:
        """The served bundle's version id."""
        return str(self.metadata.get("version", "unknown"))

    def warm(self, user_ids: Iterable[int]) -> int:
        """Compute and cache the first page of known users (default strategy, no filters), so
        their first request is a cache hit; returns how many were warmed. A user's rating
        changes their key, so nothing warmed goes stale."""
        warmed = 0
        for user_id in user_ids:
            self.recommend_for_user(int(user_id))
            warmed += 1
        return warmed

    def clear_caches(self) -> None:
        """Forget cached rankings and predictions (benchmarks measure first requests)."""
        self.rankings.cache.clear()
        self.predictions.clear()

    def cache_stats(self) -> dict[str, int]:
        """Hits and misses of the ranking and prediction caches."""
        return {
            "ranking_hits": self.rankings.cache.hits,
            "ranking_misses": self.rankings.cache.misses,
            "prediction_hits": self.predictions.full_cache.hits,
            "prediction_misses": self.predictions.full_cache.misses,
        }

    @property
    def strategies(self) -> tuple[str, ...]:
        """Names of the strategies this engine serves, the default first."""
        return self.rankings.names

    def strategy_descriptions(self) -> dict[str, str]:
        """What each served strategy does, in a sentence."""
        return {name: self.rankings.strategy(name).description for name in self.strategies}

    @property
    def genres(self) -> list[str]:
        """Genres the model knows."""
        return list(self.parts.genres)

    @property
    def known_user_ids(self) -> np.ndarray:
        """External ids of the users the model was trained with."""
        return self.parts.state.users.external_ids

    # ----- lookups -------------------------------------------------------------------------
    def knows_user(self, user_id: int) -> bool:
        """Whether the model was trained with this user."""
        return self.parts.state.users.position(user_id) >= 0

    def item_of(self, anime_id: int) -> int:
        """Internal index of an anime id (raises :class:`UnknownAnimeError`)."""
        item = self.parts.state.items.position(anime_id)
        if item < 0:
            raise UnknownAnimeError(anime_id)
        return item

    def knows_anime(self, anime_id: int) -> bool:
        """Whether the model was trained with this anime."""
        return self.parts.state.items.position(anime_id) >= 0

    def anime_id_of(self, item: int) -> int:
        """The anime id of an internal index."""
        return int(self.table.anime_ids[item])

    def anime(self, anime_id: int) -> AnimeInfo:
        """Details of one anime."""
        return self.table.info(self.item_of(anime_id))

    def find_title(self, title: str) -> TitleMatch:
        """The anime a title names (exact, then Jaro-Winkler > 0.9); else TitleNotFoundError."""
        return self.titles.find(title)

    def search(self, query: str, limit: int = 10) -> list[tuple[AnimeInfo, TitleMatch]]:
        """Anime whose names match ``query`` best."""
        return [(self.table.info(m.item), m) for m in self.titles.search(query, limit)]

    def history(self, user_id: int) -> list[tuple[AnimeInfo, int]]:
        """A known user's rated anime with their ratings, best first."""
        return self.history_of(self.known_profile(user_id))

    def history_of(self, profile: Profile) -> list[tuple[AnimeInfo, int]]:
        """A profile's rated anime with their ratings, best first."""
        order = np.argsort(-profile.ratings, kind="stable")
        return [
            (self.table.info(int(profile.rated_items[i])), int(profile.ratings[i])) for i in order
        ]

    # ----- profiles ------------------------------------------------------------------------
    def known_profile(self, user_id: int) -> Profile:
        """The profile of a user in the training data (raises :class:`UnknownUserError`)."""
        return self.profiles.known_profile(user_id)

    def profile_from_ratings(self, user_id: int, ratings: Mapping[int, int]) -> Profile:
        """A user's profile from their current ratings (see :class:`Profiles`)."""
        return self.profiles.profile_from_ratings(user_id, ratings)

    def with_dismissed(self, profile: Profile, anime_ids: Iterable[int]) -> Profile:
        """The profile with these anime never recommended ("not interested")."""
        return self.profiles.with_dismissed(profile, anime_ids)

    def new_profile(self, user: NewUser) -> Profile:
        """Fold a new user in from their ratings and/or genre weights (no retraining)."""
        return self.profiles.new_profile(user)

    def genre_shares(self, profile: Profile) -> dict[str, float]:
        """The share of each genre among what the user rated."""
        return self.profiles.genre_shares(profile)

    def mean_rating(self, profile: Profile) -> float:
        """The user's mean rating (1..10; 0 without a history)."""
        return self.profiles.mean_rating(profile)

    def most_active_users(self, limit: int) -> np.ndarray:
        """Ids of up to ``limit`` known users, most ratings first (the warm-up order)."""
        return self.profiles.most_active(limit)

    @property
    def type_names(self) -> list[str]:
        """Anime types the catalog has (TV, Movie, ...)."""
        return list(self.table.type_names)

    # ----- the rating model ----------------------------------------------------------------
    def predicted_ratings(self, features: np.ndarray) -> np.ndarray:
        """The rating model's prediction for every anime (cached per feature vector)."""
        return self.predictions.full(features)

    def predicted_ratings_of(self, profile: Profile, anime_ids: Iterable[int]) -> np.ndarray:
        """The ratings the service would show this user for these anime (1..10)."""
        items = np.array([self.item_of(int(a)) for a in anime_ids], dtype=np.int64)
        return on_rating_scale(self.predictions.of_items(profile.features, items))

    # ----- the four questions --------------------------------------------------------------
    def _recommend(
        self,
        profile: Profile,
        strategy: str,
        k: int,
        offset: int,
        item_filter: ItemFilter,
        watch: Stopwatch,
    ) -> Page:
        check_page(k, offset)
        items, scores = self.rankings.ranking(profile, strategy, offset + k, item_filter, watch)
        items, scores = items[offset : offset + k], scores[offset : offset + k]
        with watch.stage("rating"):
            predicted = on_rating_scale(self.predictions.of_items(profile.features, items))
        with watch.stage("explain"):
            taste = Taste(
                profile.rated_items,
                profile.ratings,
                profile.preferences or self.profiles.genre_shares(profile),
                profile.has_history,
            )
            reasons = explain(self.table, self.unit_vectors, items, taste)
        recommended = [
            Recommended(self.table.info(int(item)), float(score), float(rating), reason)
            for item, score, rating, reason in zip(items, scores, predicted, reasons, strict=True)
        ]
        return Page(strategy, offset, recommended, watch.timings)

    def recommend_for_user(
        self,
        user_id: int,
        k: int = 10,
        offset: int = 0,
        item_filter: ItemFilter | None = None,
        strategy: str = "default",
    ) -> Page:
        """Recommendations for a known user (never anything they rated)."""
        return self._recommend_timed(
            lambda: self.known_profile(user_id), k, offset, item_filter, strategy
        )

    def unfiltered_ranking(self, user_id: int, strategy: str, k: int) -> list[int]:
        """A known user's top ``k`` anime ids with watched anime NOT excluded: only for the
        reference's published protocol, which scores overlap with what the user rated."""
        profile = self.known_profile(user_id)
        items, _ = self.rankings.ranking(
            profile, strategy, k, ItemFilter(), Stopwatch(), exclude_watched=False
        )
        return self.table.anime_ids[items].tolist()

    def recommend_for_profile(
        self,
        profile: Profile,
        k: int = 10,
        offset: int = 0,
        item_filter: ItemFilter | None = None,
        strategy: str = "default",
    ) -> Page:
        """Recommendations for a profile built elsewhere (a user's current ratings)."""
        return self._recommend_timed(lambda: profile, k, offset, item_filter, strategy)

    def _recommend_timed(
        self,
        build_profile: Callable[[], Profile],
        k: int,
        offset: int,
        item_filter: ItemFilter | None,
        strategy: str,
    ) -> Page:
        watch = Stopwatch()
        with watch.stage("profile"):
            profile = build_profile()
        return self._recommend(profile, strategy, k, offset, item_filter or ItemFilter(), watch)

    def recommend_for_new_user(
        self,
        user: NewUser,
        k: int = 10,
        offset: int = 0,
        item_filter: ItemFilter | None = None,
        strategy: str = "default",
    ) -> Page:
        """Recommendations for a new user: no preferences, genre weights, and/or ratings."""
        return self._recommend_timed(
            lambda: self.new_profile(user), k, offset, item_filter, strategy
        )

    def similar(
        self, anime_id: int, k: int = 10, offset: int = 0, item_filter: ItemFilter | None = None
    ) -> Page:
        """The anime most cosine-similar to one anime (LightFM ⊕ synopsis embedding)."""
        check_page(k, offset)
        return self._similar.page(self.item_of(anime_id), k, offset, item_filter or ItemFilter())
