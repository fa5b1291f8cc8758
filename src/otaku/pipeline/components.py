"""Every fitted part of the hybrid recommender, trained once on one dataset and shared by the
strategies: LightFM, synopsis embeddings, the rating model and the candidate sources (the
configured plug-ins, in configuration order)."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from scipy import sparse

from otaku.columns import Columns
from otaku.data.dataset import Dataset
from otaku.features.item import genre_matrix, genre_vocabulary
from otaku.features.text import Encoder, embed_synopses
from otaku.features.user import build_user_features
from otaku.models.base import FitState
from otaku.models.lightfm import LightFMConfig, LightFMRecommender
from otaku.models.rating import RatingModel, RatingModelConfig
from otaku.pipeline.catalog import catalog_numbers
from otaku.pipeline.sources import CandidateSource, FitInputs, SourceSpec, create_source
from otaku.pipeline.sources.config import DEFAULT_SOURCES

if TYPE_CHECKING:
    from otaku.cluster import Cluster

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ComponentsConfig:
    """Hyper-parameters of every component."""

    lightfm: LightFMConfig = field(default_factory=LightFMConfig)
    rating: RatingModelConfig = field(default_factory=RatingModelConfig)
    sources: tuple[SourceSpec, ...] = DEFAULT_SOURCES
    seed: int = 42

    def with_source_params(self, name: str, **params: Any) -> "ComponentsConfig":
        """This configuration with some parameters of one source changed."""
        if name not in {spec.name for spec in self.sources}:
            raise ValueError(f"no source named {name!r}")
        sources = tuple(
            replace(spec, params={**spec.params, **params}) if spec.name == name else spec
            for spec in self.sources
        )
        return replace(self, sources=sources)


@dataclass
class Components:
    """Fitted parts plus the item-side arrays every strategy reads."""

    state: FitState
    catalog: pd.DataFrame
    ratings: sparse.csr_matrix
    genres: list[str]
    item_genres: np.ndarray
    user_features: np.ndarray
    text_embeddings: np.ndarray
    lightfm: LightFMRecommender
    sources: dict[str, CandidateSource]
    rating_model: RatingModel | None
    item_mean_rating: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    synopses: np.ndarray | None = None  # item-aligned synopsis texts, shown by the service

    def __getstate__(self) -> dict[str, object]:
        # Derived arrays are rebuilt on first use rather than stored in the bundle.
        state = dict(self.__dict__)
        for derived in ("item_vectors", "item_numbers"):
            state.pop(derived, None)
        return state

    @cached_property
    def item_vectors(self) -> np.ndarray:
        """LightFM item embedding ⊕ synopsis embedding (the reference's item representation)."""
        return np.ascontiguousarray(
            np.hstack([self.lightfm.item_embeddings, self.text_embeddings]), dtype=np.float32
        )

    @cached_property
    def item_numbers(self) -> np.ndarray:
        """Per-item numbers the ranker reads: MAL score, log members, start year, episodes,
        smoothed mean rating, log rating count (NaN where the catalog has no value)."""

        def column(name: str) -> np.ndarray:
            return catalog_numbers(self.catalog, name)

        return np.column_stack(
            [
                column(Columns.score),
                np.log1p(column(Columns.members)),
                column(Columns.start_year),
                column(Columns.episodes),
                self.item_mean_rating,
                np.log1p(self.state.popularity),
            ]
        ).astype(np.float32)


def smoothed_item_means(data: Dataset, prior_weight: float = 10.0) -> np.ndarray:
    """Each item's mean rating shrunk towards the global mean (items with no ratings: global)."""
    matrix = data.rating_matrix
    sums = np.asarray(matrix.sum(axis=0)).ravel()
    counts = data.item_counts
    global_mean = float(matrix.data.mean()) if matrix.nnz else 0.0
    return ((sums + prior_weight * global_mean) / (counts + prior_weight)).astype(np.float32)


def text_embeddings_for(
    data: Dataset, encoder: Encoder | None, cache_dir: Path | None
) -> np.ndarray:
    """Synopsis embeddings aligned with the items (zeros when there is no encoder)."""
    if encoder is None:
        return np.zeros((data.n_items, 384), dtype=np.float32)
    return embed_synopses(list(data.synopses), encoder, cache_dir)


def fit_source(spec: SourceSpec, inputs: FitInputs) -> CandidateSource:
    """A configured source fitted on ``inputs``."""
    source = create_source(spec)
    source.fit(inputs)
    return source


def fit_rating_model(
    config: RatingModelConfig,
    data: Dataset,
    user_features: np.ndarray,
    item_vectors: np.ndarray,
    cluster: "Cluster | None" = None,
) -> RatingModel:
    """The rating model fitted in this process, or with lightgbm.dask on ``cluster``."""
    model = RatingModel(config)
    if cluster is None:
        return model.fit(data, user_features, item_vectors)
    from otaku.models.rating_cluster import fit_on_cluster

    return fit_on_cluster(model, data, user_features, item_vectors, cluster)


def fit_components(
    data: Dataset,
    config: ComponentsConfig,
    text_embeddings: np.ndarray,
    with_rating_model: bool = True,
    cluster: "Cluster | None" = None,
) -> Components:
    """Fit every component on ``data`` (the rating model on ``cluster`` when given)."""
    genres = genre_vocabulary(data.catalog)
    item_genres = genre_matrix(data.catalog, genres)
    user_features = build_user_features(data.rating_matrix, item_genres)
    timings: dict[str, float] = {}

    def timed(name: str, fit: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = fit()
        timings[name] = time.perf_counter() - started
        log.info("fitted %s in %.1f s", name, timings[name])
        return result

    lightfm = timed("lightfm", lambda: LightFMRecommender(config.lightfm).fit(data))
    inputs = FitInputs(data, text_embeddings, lightfm, config.seed)
    sources: dict[str, CandidateSource] = {}
    for spec in config.sources:
        # "source." keeps a source's time apart from the model of the same name (lightfm)
        sources[spec.name] = timed(f"source.{spec.name}", partial(fit_source, spec, inputs))
    rating_model = None
    if with_rating_model:
        item_vectors = np.hstack([lightfm.item_embeddings, text_embeddings])
        rating_model = timed(
            "rating_model",
            lambda: fit_rating_model(config.rating, data, user_features, item_vectors, cluster),
        )
    return Components(
        state=FitState.of(data),
        catalog=data.catalog,
        ratings=data.rating_matrix,
        genres=genres,
        item_genres=item_genres,
        user_features=user_features,
        text_embeddings=text_embeddings,
        lightfm=lightfm,
        sources=sources,
        rating_model=rating_model,
        item_mean_rating=smoothed_item_means(data),
        timings=timings,
        synopses=data.synopses,
    )
