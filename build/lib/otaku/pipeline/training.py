"""Fit everything a bundle holds: the components and the default strategy's ranker."""

import time
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np

from otaku.data.dataset import Dataset
from otaku.models.base import Recommender
from otaku.pipeline.components import Components, ComponentsConfig, fit_components
from otaku.pipeline.ranker import HybridRankerRecommender, RankerConfig, train_ranker
from otaku.pipeline.seed import SeedRecommender


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run."""

    components: ComponentsConfig = field(default_factory=ComponentsConfig)
    ranker: RankerConfig = field(default_factory=RankerConfig)


@dataclass
class TrainedModels:
    """The fitted components and ranker, with stage timings."""

    components: Components
    ranker: lgb.Booster
    timings: dict[str, float]

    def strategies(self) -> dict[str, Recommender]:
        """The served strategies: our default and the reference ("seed")."""
        return {
            "default": HybridRankerRecommender(components=self.components, ranker=self.ranker),
            "seed": SeedRecommender(components=self.components),
        }

    def baselines(self) -> dict[str, Recommender]:
        """The baselines, fitted as components."""
        parts = self.components
        return {
            "popular": parts.popular,
            "itemknn": parts.itemknn,
            "ease": parts.ease,
            "ials": parts.ials,
            "lightfm": parts.lightfm,
        }


def fit_all(data: Dataset, config: TrainConfig, text_embeddings: np.ndarray) -> TrainedModels:
    """Train the ranker (two-stage) and the final components on ``data``."""
    started = time.perf_counter()
    ranker = train_ranker(data, config.components, text_embeddings, config.ranker)
    ranked = time.perf_counter()
    components = fit_components(data, config.components, text_embeddings)
    done = time.perf_counter()
    timings = {"ranker_two_stage": ranked - started, "components": done - ranked}
    timings.update({f"components.{name}": value for name, value in components.timings.items()})
    return TrainedModels(components, ranker, timings)
