"""The work every strategy shares, done once: what a user may be shown (watched anime, filters,
a new user's chosen genres), the ranking cache, and one deep ranking that serves every page.
The service and ``otaku evaluate`` both rank through here."""

from collections.abc import Mapping, Sequence

import numpy as np

from otaku.pipeline.cache import LruCache
from otaku.pipeline.catalog import ItemTable
from otaku.pipeline.filters import InvalidInputError, ItemFilter
from otaku.pipeline.pages import Stopwatch
from otaku.pipeline.profiles import Profile, batch_context
from otaku.pipeline.strategies import Ranking, RankingStrategy

# Ranked lists keyed by (strategy, filters, the user's history and features): pages and
# repeated requests are slices of one ranking; a new rating changes the key.
RANKING_CACHE_SIZE = 50_000
RANKING_DEPTH = 100


class Rankings:
    """Ranks profiles with named strategies (thread-safe; the cache is the only state)."""

    def __init__(
        self, table: ItemTable, genres: list[str], strategies: Mapping[str, RankingStrategy]
    ) -> None:
        self.table = table
        self._genre_position = {genre: i for i, genre in enumerate(genres)}
        self._strategies = dict(strategies)
        self.cache: LruCache[tuple[object, ...], Ranking] = LruCache(RANKING_CACHE_SIZE)

    @property
    def names(self) -> tuple[str, ...]:
        """The strategies this ranker knows."""
        return tuple(self._strategies)

    def add(self, strategy: RankingStrategy) -> None:
        """Rank with one more strategy under its label (the evaluation's baselines)."""
        self._strategies[strategy.label] = strategy

    def strategy(self, name: str) -> RankingStrategy:
        """A strategy by name (an unknown name is the caller's error, naming the field)."""
        try:
            return self._strategies[name]
        except KeyError:
            raise InvalidInputError(
                "strategy", f"must be one of {list(self._strategies)}"
            ) from None

    def allowed(
        self, profile: Profile, item_filter: ItemFilter, exclude_watched: bool = True
    ) -> np.ndarray:
        """What the user may be shown: the filters, minus what they rated and what they
        dismissed; a new user who chose genres and rated nothing sees only those genres (as
        the reference does)."""
        allowed = item_filter.mask(self.table)
        if exclude_watched:
            allowed[profile.rated_items] = False
            allowed[profile.dismissed] = False
        wanted = [self._genre_position[g] for g, w in profile.preferences.items() if w > 0]
        if wanted and not profile.has_history:
            allowed &= self.table.genres[:, wanted].any(axis=1)
        return allowed

    def ranking(
        self,
        profile: Profile,
        strategy: str,
        n: int,
        item_filter: ItemFilter,
        watch: Stopwatch,
        exclude_watched: bool = True,
        remember: bool = True,
    ) -> Ranking:
        """The top ``n`` items and scores, from the cache when this exact user (history,
        features, preferences) asked before with the same strategy and filters; a computed
        ranking is cached unless ``remember`` is False (a batch job's rankings are not the
        service's to hold)."""
        chosen = self.strategy(strategy)
        # A prefix-consistent strategy computes one deep ranking that serves every page.
        depth = n if chosen.depth_sensitive else max(n, RANKING_DEPTH)
        key = _cache_key(profile, strategy, depth, item_filter, exclude_watched)
        cached = self.cache.get(key)
        if cached is not None:
            return cached if depth == n else (cached[0][:n], cached[1][:n])
        ranking = self._rank([profile], chosen, depth, item_filter, exclude_watched, watch)[0]
        if remember:
            self.cache.put(key, ranking)
        return ranking if depth == n else (ranking[0][:n], ranking[1][:n])

    def deep_rankings(
        self, profiles: Sequence[Profile], strategy: str, watch: Stopwatch
    ) -> list[Ranking]:
        """Many profiles' unfiltered deep (:data:`RANKING_DEPTH`) rankings at once, nothing
        cached (a batch job's): each is exactly the ranking :meth:`ranking` computes for that
        profile alone, since strategies score every user of a batch independently."""
        chosen = self.strategy(strategy)
        if chosen.depth_sensitive:
            raise ValueError(f"strategy {strategy!r} has no depth-independent ranking")
        return self._rank(profiles, chosen, RANKING_DEPTH, ItemFilter(), True, watch)

    def _rank(
        self,
        profiles: Sequence[Profile],
        chosen: RankingStrategy,
        depth: int,
        item_filter: ItemFilter,
        exclude_watched: bool,
        watch: Stopwatch,
    ) -> list[Ranking]:
        with watch.stage("filter"):
            allowed = np.stack([self.allowed(p, item_filter, exclude_watched) for p in profiles])
        # a user whom the filters leave nothing gets an empty page, not an error
        rankings: list[Ranking] = [
            (np.empty(0, np.int64), np.empty(0, np.float32)) for _ in profiles
        ]
        open_rows = np.flatnonzero(allowed.any(axis=1))
        if len(open_rows):
            context = batch_context([profiles[int(row)] for row in open_rows], self.table.n_items)
            ranked = chosen.rank(context, allowed[open_rows], depth, watch)
            for row, ranking in zip(open_rows, ranked, strict=True):
                rankings[row] = ranking
        for ranking in rankings:
            for array in ranking:
                array.setflags(write=False)
        return rankings

    def has_deep_ranking(self, profile: Profile, strategy: str) -> bool:
        """Whether this profile's unfiltered deep ranking with this strategy is cached."""
        key = _cache_key(profile, strategy, RANKING_DEPTH, ItemFilter(), True)
        return key in self.cache

    def adopt(self, profile: Profile, strategy: str, ranking: Ranking) -> None:
        """Cache a deep (:data:`RANKING_DEPTH`) unfiltered ranking of this exact profile that
        was computed elsewhere with this strategy (a precomputed one), so that the profile's
        pages read it exactly as they would read the ranking computed here."""
        if self.strategy(strategy).depth_sensitive:
            raise ValueError(f"strategy {strategy!r} has no depth-independent ranking to adopt")
        items, scores = (np.asarray(ranking[0], np.int64), np.asarray(ranking[1], np.float32))
        for array in (items, scores):
            array.setflags(write=False)
        key = _cache_key(profile, strategy, RANKING_DEPTH, ItemFilter(), True)
        self.cache.put(key, (items, scores))


def _cache_key(
    profile: Profile, strategy: str, depth: int, item_filter: ItemFilter, exclude_watched: bool
) -> tuple[object, ...]:
    return (strategy, depth, item_filter, exclude_watched, profile.fingerprint)
