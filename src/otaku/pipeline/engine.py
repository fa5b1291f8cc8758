"""The recommendation engine: a loaded bundle answering the four questions, fast.

Everything the request path reads is prepared once in :class:`Engine` (contiguous arrays, the
title index, unit item vectors, the cold-start predictions); a request does only vectorised
numpy work plus LightGBM on a few hundred candidate rows. No pandas on the request path.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from scipy import sparse

from otaku.models.rating import on_rating_scale, predict_best, rows
from otaku.pipeline.cache import LruCache
from otaku.pipeline.candidates import UserContext, candidate_features
from otaku.pipeline.catalog import AnimeInfo, ItemTable
from otaku.pipeline.explain import Taste, explain
from otaku.pipeline.filters import InvalidInputError, ItemFilter
from otaku.pipeline.pages import (
    STRATEGIES,
    Page,
    Recommended,
    Stopwatch,
    Strategy,
    check_page,
)
from otaku.pipeline.profiles import NewUser, Profile, Profiles
from otaku.pipeline.seed import SeedRecommender, normalise_rows
from otaku.pipeline.similar import SimilarItems
from otaku.pipeline.titles import TitleIndex, TitleMatch
from otaku.pipeline.training import TrainedModels

# A user with no history has no collaborative signal: draw candidates from the sources that
# still mean something (LightFM from features, popularity) and let the ranker order them.
COLD_QUOTAS = {"lightfm": 150, "popular": 150}
# Full-catalog rating predictions keyed by user feature vector: the rating model sees a user
# only through their features, so a user who rates something gets a new key (never stale).
PREDICTION_CACHE_SIZE = 512
# Ranked lists keyed by (strategy, filters, the user's history and features): pages and
# repeated requests are slices of one ranking; a new rating changes the key.
RANKING_CACHE_SIZE = 50_000
RANKING_DEPTH = 100
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

    def __init__(self, models: TrainedModels, metadata: Mapping[str, Any]) -> None:
        parts = models.components
        if parts.rating_model is None or parts.rating_model.booster is None:
            raise ValueError("the bundle has no rating model: it cannot be served")
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
        self._seed = SeedRecommender(components=parts)
        self._predictions: LruCache[bytes, np.ndarray] = LruCache(PREDICTION_CACHE_SIZE)
        self._rankings: LruCache[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = LruCache(
            RANKING_CACHE_SIZE
        )
        self._page_ratings: LruCache[tuple[bytes, bytes], np.ndarray] = LruCache(RANKING_CACHE_SIZE)
        self._popular_order = np.argsort(-parts.state.popularity, kind="stable")
        self._genre_position = {genre: i for i, genre in enumerate(parts.genres)}
        self.cold_predictions = self.predicted_ratings(np.zeros(len(parts.genres) + 1, np.float32))
        self._similar = SimilarItems(self.table, self.unit_vectors, self.cold_predictions)

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
        self._rankings = LruCache(RANKING_CACHE_SIZE)
        self._predictions = LruCache(PREDICTION_CACHE_SIZE)
        self._page_ratings = LruCache(RANKING_CACHE_SIZE)

    def cache_stats(self) -> dict[str, int]:
        """Hits and misses of the ranking and prediction caches."""
        return {
            "ranking_hits": self._rankings.hits,
            "ranking_misses": self._rankings.misses,
            "prediction_hits": self._predictions.hits,
            "prediction_misses": self._predictions.misses,
        }

    @property
    def genres(self) -> list[str]:
        """Genres the model knows."""
        return list(self.parts.genres)

    @property
    def known_user_ids(self) -> np.ndarray:
        """External ids of the users the model was trained with."""
        return self.parts.state.users.external_ids

    # ----- lookups -------------------------------------------------------------------------
    def item_of(self, anime_id: int) -> int:
        """Internal index of an anime id (raises :class:`UnknownAnimeError`)."""
        item = self.parts.state.items.position(anime_id)
        if item < 0:
            raise UnknownAnimeError(anime_id)
        return item

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
        key = np.ascontiguousarray(features, dtype=np.float32).tobytes()
        cached = self._predictions.get(key)
        if cached is not None:
            return cached
        predicted = self._seed.predict_ratings(features, SERVING_THREADS)
        predicted.setflags(write=False)
        self._predictions.put(key, predicted)
        return predicted

    def _ratings_of(self, profile: Profile, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of a page of items: from the full-catalog predictions when they
        are cached, else the rating model on just those rows (about 0.5 ms a row)."""
        features = np.ascontiguousarray(profile.features, dtype=np.float32)
        if not features.any():
            return self.cold_predictions[items]
        cached = self._predictions.get(features.tobytes())
        if cached is not None:
            return cached[items]
        key = (features.tobytes(), np.ascontiguousarray(items).tobytes())
        page = self._page_ratings.get(key)
        if page is None:
            booster = self.parts.rating_model.booster if self.parts.rating_model else None
            assert booster is not None  # checked in __init__
            page = predict_best(booster, rows(features, self.item_vectors[items]), SERVING_THREADS)
            self._page_ratings.put(key, page)
        return page

    # ----- selection -----------------------------------------------------------------------
    def _allowed(self, profile: Profile, item_filter: ItemFilter) -> np.ndarray:
        allowed = item_filter.mask(self.table)
        allowed[profile.rated_items] = False
        wanted = [self._genre_position[g] for g, w in profile.preferences.items() if w > 0]
        if wanted and not profile.has_history:  # the reference: only the chosen genres
            allowed &= self.table.genres[:, wanted].any(axis=1)
        return allowed

    def _rank_default(
        self, profile: Profile, allowed: np.ndarray, n: int, watch: Stopwatch
    ) -> tuple[np.ndarray, np.ndarray]:
        with watch.stage("candidates"):
            row = sparse.csr_matrix(
                (profile.ratings, (np.zeros(len(profile.rated_items), int), profile.rated_items)),
                shape=(1, self.table.n_items),
            )
            context = UserContext(
                ratings=row,
                features=profile.features[None, :],
                lightfm_vectors=profile.lightfm_vector[None, :],
                ials_vectors=profile.ials_vector[None, :],
            )
            quotas = None if profile.has_history else COLD_QUOTAS
            candidates, features = candidate_features(self.parts, context, quotas, allowed)
        with watch.stage("rank"):
            chosen = candidates[0]
            scores = (
                predict_best(self.models.ranker, features[0], SERVING_THREADS)
                if len(chosen)
                else np.empty(0, np.float32)
            )
            order = np.argsort(-scores, kind="stable")[:n]
            items, scores = chosen[order], scores[order]
        if len(items) < n:
            items, scores = self._fill_popular(items, scores, allowed, n)
        return items, scores

    def _fill_popular(
        self, items: np.ndarray, scores: np.ndarray, allowed: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top up a short list with the most popular allowed anime not already in it."""
        open_slots = allowed.copy()
        open_slots[items] = False
        extra = self._popular_order[open_slots[self._popular_order]][: n - len(items)]
        floor = float(scores.min()) - 1.0 if len(scores) else 0.0
        extra_scores = floor - np.arange(len(extra), dtype=np.float32)
        return np.concatenate([items, extra]), np.concatenate([scores, extra_scores])

    def _rank_seed(
        self, profile: Profile, allowed: np.ndarray, n: int, watch: Stopwatch
    ) -> tuple[np.ndarray, np.ndarray]:
        with watch.stage("predict"):
            predicted = np.where(allowed, self.predicted_ratings(profile.features), -np.inf)
        with watch.stage("select"):
            items = self._seed.select(predicted, profile.rated_items, profile.ratings, n)
            items = items[np.isfinite(predicted[items])]
        return items, predicted[items]

    def _ranking(
        self,
        profile: Profile,
        strategy: Strategy,
        n: int,
        item_filter: ItemFilter,
        watch: Stopwatch,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top ``n`` items and scores, from the ranking cache when this exact user (history,
        features, preferences) asked before with the same strategy and filters."""
        # The default ranking is prefix-consistent, so one deep ranking serves every page; the
        # seed's choice depends on n, so its key holds n.
        depth = max(n, RANKING_DEPTH) if strategy == "default" else n
        key = (strategy, depth, item_filter, profile.fingerprint)
        cached = self._rankings.get(key)
        if cached is not None:
            return cached
        with watch.stage("filter"):
            allowed = self._allowed(profile, item_filter)
        if not allowed.any():  # the filters leave nothing: an empty page, not an error
            ranking = (np.empty(0, np.int64), np.empty(0, np.float32))
        elif strategy == "seed":
            ranking = self._rank_seed(profile, allowed, depth, watch)
        else:
            ranking = self._rank_default(profile, allowed, depth, watch)
        for array in ranking:
            array.setflags(write=False)
        self._rankings.put(key, ranking)
        return ranking

    def _recommend(
        self,
        profile: Profile,
        strategy: Strategy,
        k: int,
        offset: int,
        item_filter: ItemFilter,
        watch: Stopwatch,
    ) -> Page:
        check_page(k, offset)
        if strategy not in STRATEGIES:
            raise InvalidInputError("strategy", f"must be one of {list(STRATEGIES)}")
        items, scores = self._ranking(profile, strategy, offset + k, item_filter, watch)
        items, scores = items[offset : offset + k], scores[offset : offset + k]
        with watch.stage("rating"):
            predicted = on_rating_scale(self._ratings_of(profile, items))
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

    # ----- the four questions --------------------------------------------------------------
    def recommend_for_user(
        self,
        user_id: int,
        k: int = 10,
        offset: int = 0,
        item_filter: ItemFilter | None = None,
        strategy: Strategy = "default",
    ) -> Page:
        """Recommendations for a known user (never anything they rated)."""
        return self._recommend_timed(
            lambda: self.known_profile(user_id), k, offset, item_filter, strategy
        )

    def recommend_for_profile(
        self,
        profile: Profile,
        k: int = 10,
        offset: int = 0,
        item_filter: ItemFilter | None = None,
        strategy: Strategy = "default",
    ) -> Page:
        """Recommendations for a profile built elsewhere (a user's current ratings)."""
        return self._recommend_timed(lambda: profile, k, offset, item_filter, strategy)

    def _recommend_timed(
        self,
        build_profile: Callable[[], Profile],
        k: int,
        offset: int,
        item_filter: ItemFilter | None,
        strategy: Strategy,
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
        strategy: Strategy = "default",
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
