"""Fit everything a bundle holds: the components and the default strategy's ranker."""

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from otaku.data.dataset import Dataset
from otaku.pipeline.candidates import feature_names
from otaku.pipeline.components import Components, ComponentsConfig, fit_components
from otaku.pipeline.ranker import RankerConfig, train_ranker

if TYPE_CHECKING:
    from otaku.cluster import Cluster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run."""

    components: ComponentsConfig = field(default_factory=ComponentsConfig)
    ranker: RankerConfig = field(default_factory=RankerConfig)
    preset: str = "custom"  # the named preset it came from (otaku.pipeline.presets)


@dataclass
class TrainedModels:
    """The fitted components and ranker, with stage timings."""

    components: Components
    ranker: lgb.Booster
    timings: dict[str, float]
    facts: dict[str, Any] = field(default_factory=dict)  # e.g. rounds chosen for a cluster

    @property
    def samples(self) -> dict[str, int]:
        """How much of the data the budgeted components trained on (the preset's choice)."""
        parts = self.components
        counts = {
            "users": int(np.count_nonzero(np.diff(parts.ratings.indptr))),  # with ratings
            "ratings": int(parts.ratings.nnz),
            "lightfm_users": int(getattr(parts.lightfm, "trained_users", 0)),
        }
        rating = parts.rating_model
        if rating is not None:
            counts["rating_model_users"] = int(getattr(rating, "trained_users", 0))
            counts["rating_model_ratings"] = int(getattr(rating, "trained_ratings", 0))
        return counts

    @property
    def feature_names(self) -> list[str]:
        """The ranker's feature names, as it was trained."""
        return list(self.ranker.feature_name())


class BundleMismatchError(ValueError):
    """The parts of a bundle do not fit together (the message says what to do)."""


def check_ranker_features(models: TrainedModels) -> None:
    """Raise :class:`BundleMismatchError` unless the ranker was trained on exactly the features
    the bundle's candidate sources produce (checked when a bundle loads, not at a request)."""
    sources = getattr(models.components, "sources", None)
    if not isinstance(sources, dict) or not sources:
        raise BundleMismatchError(
            "the bundle has no candidate sources (written by an older otaku): retrain it"
        )
    expected = feature_names(list(sources))
    if models.feature_names != expected:
        missing = sorted(set(expected) - set(models.feature_names))
        extra = sorted(set(models.feature_names) - set(expected))
        raise BundleMismatchError(
            f"the ranker was trained on other features than the bundle's sources "
            f"{list(sources)} produce (missing from the ranker: {missing}; unknown to the "
            f"sources: {extra}; or in another order): retrain the bundle"
        )


def fit_all(
    data: Dataset,
    config: TrainConfig,
    text_embeddings: np.ndarray,
    cluster: "Cluster | None" = None,
) -> TrainedModels:
    """Train the ranker (two-stage) and the final components on ``data``; with ``cluster``
    the ranker's candidates, the ranker and the rating model are trained on Dask."""
    started = time.perf_counter()
    facts: dict[str, Any] = {}
    ranker = train_ranker(data, config.components, text_embeddings, config.ranker, cluster, facts)
    ranked = time.perf_counter()
    log.info("fitted ranker in %.1f s (with its stage-one components)", ranked - started)
    components = fit_components(data, config.components, text_embeddings, cluster=cluster)
    done = time.perf_counter()
    timings = {"ranker_two_stage": ranked - started, "components": done - ranked}
    timings.update({f"components.{name}": value for name, value in components.timings.items()})
    rating = components.rating_model
    if rating is not None and getattr(rating, "rounds_chosen_locally", None) is not None:
        facts["rating_rounds_chosen_locally"] = rating.rounds_chosen_locally
        facts["rating_rounds_sample_ratings"] = rating.rounds_sample_ratings
    return TrainedModels(components, ranker, timings, facts)
