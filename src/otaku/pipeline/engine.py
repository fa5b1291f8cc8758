"""The recommendation engine: a loaded bundle answering the four questions, fast.

Everything the request path reads is prepared once in :class:`Engine` (contiguous arrays, the
title index, unit item vectors, the cold-start predictions); a request does only vectorised
numpy work plus LightGBM on a few hundred candidate rows. No pandas on the request path.
"""

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from scipy import sparse

from otaku.columns import RATING_MAX, RATING_MIN
from otaku.features.user import features_from_history, features_from_preferences
from otaku.models.rating import on_rating_scale, predict_best, rows
from otaku.pipeline.cache import LruCache
from otaku.pipeline.candidates import UserContext, candidate_features
from otaku.pipeline.catalog import AnimeInfo, ItemTable
from otaku.pipeline.explain import Taste, explain, explain_similar
from otaku.pipeline.filters import InvalidInputError, ItemFilter
from otaku.pipeline.seed import SeedRecommender, normalise_rows
from otaku.pipeline.titles import TitleIndex, TitleMatch
from otaku.pipeline.training import TrainedModels

Strategy = Literal["default", "seed"]
STRATEGIES: tuple[Strategy, ...] = ("default", "seed")
MAX_K = 100
MAX_OFFSET = 900
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


class UnknownUserError(LookupError):
    """The user id is not in the served model."""

    def __init__(self, user_id: int) -> None:
        super().__init__(
            f"user {user_id} is not known to the model; new users get recommendations from "
            "POST /v1/recommendations with their genre preferences and/or a few ratings"
        )
        self.user_id = user_id


class UnknownAnimeError(LookupError):
    """The anime id is not in the catalog."""

    def __init__(self, anime_id: int) -> None:
        super().__init__(f"anime {anime_id} is not in the catalog")
        self.anime_id = anime_id


@dataclass(frozen=True)
class NewUser:
    """A user the model has not seen: genre weights and/or a few ratings (anime id → 1..10)."""

    ratings: Mapping[int, float] = field(default_factory=dict)
    preferences: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Recommended:
    """One recommended anime."""

    anime: AnimeInfo
    score: float
    predicted_rating: float
    explanation: str


@dataclass(frozen=True)
class Page:
    """A page of recommendations with the time each stage took (seconds)."""

    strategy: Strategy
    offset: int
    items: list[Recommended]
    timings: dict[str, float]


@dataclass(frozen=True)
class Profile:
    """A user as the engine sees them (known, or folded in from what they told us)."""

    rated_items: np.ndarray
    ratings: np.ndarray
    features: np.ndarray
    lightfm_vector: np.ndarray
    ials_vector: np.ndarray
    preferences: Mapping[str, float]

    @property
    def has_history(self) -> bool:
        """Whether the user rated anything."""
        return len(self.rated_items) > 0

    @cached_property
    def fingerprint(self) -> bytes:
        """A digest of everything a ranking depends on (history, features, preferences)."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.rated_items, self.ratings, self.features):
            digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(b"|")
        digest.update(repr(sorted(self.preferences.items())).encode())
        return digest.digest()


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


def check_page(k: int, offset: int) -> None:
    """Raise :class:`InvalidInputError` for a page outside 1 <= k <= 100, 0 <= offset <= 900."""
    if not 1 <= k <= MAX_K:
        raise InvalidInputError("k", f"must be between 1 and {MAX_K}, got {k}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInputError("offset", f"must be between 0 and {MAX_OFFSET}, got {offset}")


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
        user = self.parts.state.users.position(user_id)
        if user < 0:
            raise UnknownUserError(user_id)
        row = self.parts.ratings[user]
        return Profile(
            rated_items=row.indices.astype(np.int64),
            ratings=row.data.astype(np.float32),
            features=self.parts.user_features[user],
            lightfm_vector=self.parts.lightfm.user_embeddings[user],
            ials_vector=self.parts.ials.user_vectors(np.array([user]))[0],
            preferences={},
        )

    def profile_from_ratings(self, user_id: int, ratings: Mapping[int, int]) -> Profile:
        """A user's profile from their current ratings (anime id → rating): the trained one
        when nothing changed since training, else folded in from those ratings."""
        positions = self.parts.state.items
        items = np.array([positions.position(a) for a in ratings], dtype=np.int64)
        values = np.fromiter(ratings.values(), dtype=np.float32, count=len(ratings))
        known = items >= 0  # anime added after training are not the model's to use
        items, values = items[known], values[known]
        order = np.argsort(items, kind="stable")
        items, values = items[order], values[order]
        if self.parts.state.users.position(user_id) >= 0:
            trained = self.known_profile(user_id)
            if np.array_equal(trained.rated_items, items) and np.array_equal(
                trained.ratings, values
            ):
                return trained
        anime_ids = self.table.anime_ids[items].tolist()
        return self.new_profile(NewUser(ratings=dict(zip(anime_ids, values.tolist(), strict=True))))

    def _check_ratings(self, ratings: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
        items, values = [], []
        for anime_id, rating in ratings.items():
            if not RATING_MIN <= rating <= RATING_MAX:
                raise InvalidInputError(
                    f"ratings.{anime_id}",
                    f"rating must be between {RATING_MIN} and {RATING_MAX}, got {rating}",
                )
            item = self.parts.state.items.position(anime_id)
            if item < 0:
                raise InvalidInputError(f"ratings.{anime_id}", "unknown anime id")
            items.append(item)
            values.append(float(rating))
        return np.asarray(items, dtype=np.int64), np.asarray(values, dtype=np.float32)

    def _check_preferences(self, preferences: Mapping[str, float]) -> dict[str, float]:
        for genre, weight in preferences.items():
            if genre not in self._genre_position:
                raise InvalidInputError(
                    f"preferences.{genre}", f"unknown genre; known genres: {self.genres}"
                )
            if not 0.0 <= weight <= 1.0:
                raise InvalidInputError(
                    f"preferences.{genre}", f"weight must be between 0 and 1, got {weight}"
                )
        return dict(preferences)

    def new_profile(self, user: NewUser) -> Profile:
        """Fold a new user in: features from their ratings and/or genre weights, no retraining.

        With both, the genre part of the features is the mean of the history's genre shares
        and the stated weights.
        """
        items, ratings = self._check_ratings(user.ratings)
        preferences = self._check_preferences(user.preferences)
        stated = features_from_preferences(preferences, self.genres)
        if len(items):
            features = features_from_history(items, ratings, self.parts.item_genres)
            if preferences:
                features[:-1] = (features[:-1] + stated[:-1]) / 2.0
        else:
            features = stated
        return Profile(
            rated_items=items,
            ratings=ratings,
            features=features.astype(np.float32),
            lightfm_vector=self.parts.lightfm.vectors_from_features(features[None, :])[0],
            ials_vector=self.parts.ials.fold_in(items, ratings),
            preferences=preferences,
        )

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
        self, profile: Profile, allowed: np.ndarray, n: int, watch: _Stopwatch
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
        self, profile: Profile, allowed: np.ndarray, n: int, watch: _Stopwatch
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
        watch: _Stopwatch,
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
        watch: _Stopwatch,
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
                profile.preferences or self._history_genres(profile),
                profile.has_history,
            )
            reasons = explain(self.table, self.unit_vectors, items, taste)
        recommended = [
            Recommended(self.table.info(int(item)), float(score), float(rating), reason)
            for item, score, rating, reason in zip(items, scores, predicted, reasons, strict=True)
        ]
        return Page(strategy, offset, recommended, watch.timings)

    def _history_genres(self, profile: Profile) -> dict[str, float]:
        if not profile.has_history:
            return {}
        shares = profile.features[:-1]
        return {self.genres[g]: float(shares[g]) for g in np.flatnonzero(shares)}

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
        watch = _Stopwatch()
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
        watch = _Stopwatch()
        query = self.item_of(anime_id)
        with watch.stage("similar"):
            allowed = (item_filter or ItemFilter()).mask(self.table)
            allowed[query] = False
            similarity = np.where(allowed, self.unit_vectors @ self.unit_vectors[query], -np.inf)
            top = np.argpartition(-similarity, min(offset + k, len(similarity) - 1))
            top = top[: offset + k]
            top = top[np.argsort(-similarity[top], kind="stable")]
            items = top[np.isfinite(similarity[top])][offset:]
        with watch.stage("explain"):
            reasons = explain_similar(self.table, query, items)
        recommended = [
            Recommended(
                self.table.info(int(item)),
                float(similarity[item]),
                float(on_rating_scale(self.cold_predictions[item])),
                reason,
            )
            for item, reason in zip(items, reasons, strict=True)
        ]
        return Page("default", offset, recommended, watch.timings)
