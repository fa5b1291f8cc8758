"""Strategies: each written once, looked up by name in one registry (the API's enum, the UI's
options and ``otaku evaluate`` come from it).

A strategy only orders what it is allowed to show. The shared work — what a user may be shown
(watched anime, filters, stated genres), known/new/cold users, caching and paging — is done
once by :class:`otaku.pipeline.rankings.Rankings`, for the service and the evaluation alike.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar, TypeVar

import lightgbm as lgb
import numpy as np

from otaku.models.base import top_k
from otaku.models.rating import predict_best
from otaku.pipeline.candidates import NO_OPINION, candidate_features
from otaku.pipeline.components import Components
from otaku.pipeline.pages import Stopwatch
from otaku.pipeline.ratings import RatingPredictions
from otaku.pipeline.seed import select_like_reference
from otaku.pipeline.sources import CandidateSource, UserContext, vectors_for

Ranking = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ServedParts:
    """What strategies read of a loaded bundle (read-only)."""

    components: Components
    ranker: lgb.Booster
    predictions: RatingPredictions
    unit_vectors: np.ndarray  # item vectors (LightFM ⊕ synopsis) scaled to unit length
    popular_order: np.ndarray  # items, most rated first
    threads: int  # LightGBM threads per prediction


class RankingStrategy(ABC):
    """Orders the allowed items for a batch of users."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # True when the top n is not the first n of a deeper ranking (the ranking cache then
    # keys on n instead of computing one deep ranking for every page).
    depth_sensitive: ClassVar[bool] = False
    # A cap on the users ``otaku evaluate`` asks this strategy about (None: all test users).
    evaluation_users: ClassVar[int | None] = None

    def __init__(self, parts: ServedParts) -> None:
        self.parts = parts
        self.popular_order = parts.popular_order

    @property
    def label(self) -> str:
        """The name rankings and reports show."""
        return self.name

    @abstractmethod
    def rank(
        self, users: UserContext, allowed: np.ndarray, n: int, watch: Stopwatch
    ) -> list[Ranking]:
        """Per user, up to ``n`` allowed items (``allowed``: users x items) and their scores,
        best first."""

    def fill_popular(self, ranking: Ranking, allowed: np.ndarray, n: int) -> Ranking:
        """Top up a short ranking with the most popular allowed items not already in it,
        scored below everything the strategy chose."""
        items, scores = ranking
        if len(items) >= n:
            return ranking
        order = self.popular_order
        open_slots = allowed.copy()
        open_slots[items] = False
        extra = order[open_slots[order]][: n - len(items)]
        floor = float(scores.min()) - 1.0 if len(scores) else 0.0
        extra_scores = floor - np.arange(len(extra), dtype=np.float32)
        return (
            np.concatenate([items, extra]).astype(np.int64),
            np.concatenate([scores, extra_scores]).astype(np.float32),
        )


STRATEGY_TYPES: dict[str, type[RankingStrategy]] = {}
T = TypeVar("T", bound=type[RankingStrategy])


def register_strategy(cls: T) -> T:
    """Class decorator: serve a strategy under its ``name``."""
    STRATEGY_TYPES[cls.name] = cls
    return cls


def build_strategies(parts: ServedParts) -> dict[str, RankingStrategy]:
    """One instance of every registered strategy over a loaded bundle."""
    return {name: cls(parts) for name, cls in STRATEGY_TYPES.items()}


@register_strategy
class DefaultStrategy(RankingStrategy):
    """Candidates from every configured source, ordered by the learned ranker."""

    name = "default"
    description = "candidates from every source, ordered by the learned ranker (the best)"

    def rank(
        self, users: UserContext, allowed: np.ndarray, n: int, watch: Stopwatch
    ) -> list[Ranking]:
        parts = self.parts.components
        with watch.stage("candidates"):
            candidates, features = candidate_features(
                parts.sources, parts.item_numbers, parts.item_genres, users, allowed
            )
        rankings = []
        with watch.stage("rank"):
            # one prediction for the whole batch: a tree ensemble scores each row on its own
            stacked = np.concatenate(features) if features else np.empty((0, 0), np.float32)
            predicted = (
                predict_best(self.parts.ranker, stacked, self.parts.threads)
                if len(stacked)
                else np.empty(0, np.float32)
            )
            per_user = np.split(predicted, np.cumsum([len(c) for c in candidates])[:-1])
            for chosen, scores, row_allowed in zip(candidates, per_user, allowed, strict=True):
                order = np.argsort(-scores, kind="stable")[:n]
                ranking = (chosen[order].astype(np.int64), scores[order].astype(np.float32))
                rankings.append(self.fill_popular(ranking, row_allowed, n))
        return rankings


@register_strategy
class SeedStrategy(RankingStrategy):
    """The reference algorithm: predicted ratings, then similarity to the favourites."""

    name = "seed"
    description = "the reference algorithm (rating model + similarity to favourites)"
    depth_sensitive = True  # the reference picks the k most similar, so k changes the set
    evaluation_users = 100  # 17k rating predictions per user

    def rank(
        self, users: UserContext, allowed: np.ndarray, n: int, watch: Stopwatch
    ) -> list[Ranking]:
        rankings = []
        for row, row_allowed in enumerate(allowed):
            with watch.stage("predict"):
                full = self.parts.predictions.full(users.features[row])
                predicted = np.where(row_allowed, full, -np.inf)
            with watch.stage("select"):
                history = users.ratings[row]
                items = select_like_reference(
                    predicted, self.parts.unit_vectors, history.indices, history.data, n
                )
            rankings.append((items.astype(np.int64), predicted[items].astype(np.float32)))
        return rankings


class SourceStrategy(RankingStrategy):
    """One candidate source's own ranking (the baselines of ``otaku evaluate``, and the
    baseline tuning, which has no served bundle: it needs only the popularity order). The
    source may be another instance than the served one (a tuned baseline fitted on the same
    data), so users get the source's own vectors."""

    name = "source"

    def __init__(self, source: CandidateSource, popular_order: np.ndarray) -> None:
        self.source = source
        self.popular_order = popular_order

    @property
    def label(self) -> str:
        return self.source.name

    def rank(
        self, users: UserContext, allowed: np.ndarray, n: int, watch: Stopwatch
    ) -> list[Ranking]:
        with watch.stage("score"):
            own = vectors_for(self.source, users)
            if own is not None:
                users = replace(users, vectors={**users.vectors, self.source.name: own})
            scores = np.nan_to_num(self.source.score(users), nan=NO_OPINION)
            scores[~allowed] = -np.inf
        rankings = []
        for row, row_allowed in enumerate(allowed):
            items = top_k(scores[row][None, :], n)[0]
            items = items[row_allowed[items]]
            ranking = (items.astype(np.int64), scores[row, items].astype(np.float32))
            rankings.append(self.fill_popular(ranking, row_allowed, n))
        return rankings
