"""`otaku train`: data -> features -> models -> one bundle on disk, logged to MLflow."""

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from otaku.cluster import Cluster
from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.data.files import DataSources
from otaku.features.text import SentenceTransformerEncoder
from otaku.jobs.holdout import fixed_split, holdout_record
from otaku.pipeline.bundle import Bundle, library_versions, new_version_id
from otaku.pipeline.components import text_embeddings_for
from otaku.pipeline.training import TrainConfig, TrainedModels, fit_all
from otaku.storage.registry import RegisteredBundle, log_bundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run produced."""

    bundle: Bundle
    directory: Path
    registered: RegisteredBundle | None


def compute_text_embeddings(data: Dataset, settings: Settings, enabled: bool) -> np.ndarray:
    """Synopsis embeddings with the configured model (cached), or zeros when disabled or
    when the dataset has no synopses (the demo)."""
    has_text = bool(any(text.strip() for text in data.synopses))
    encoder = SentenceTransformerEncoder(settings.text_model) if enabled and has_text else None
    return text_embeddings_for(data, encoder, settings.cache_dir)


def training_metrics(models: TrainedModels) -> dict[str, Any]:
    """Validation figures recorded during training (early-stopping sets)."""
    metrics: dict[str, Any] = {"ranker_trees": models.ranker.num_trees(), **models.facts}
    for key, value in models.ranker.best_score.get("valid_0", {}).items():
        metrics[f"ranker_valid_{key.replace('@', '_at_')}"] = float(value)
    for name, source in models.components.sources.items():
        kept = getattr(source, "kept_variance", None)
        if kept is not None:  # a source that reduced its vectors: how much they still hold
            metrics[f"{name}_kept_variance"] = float(kept)
    rating = models.components.rating_model
    if rating is not None and rating.booster is not None:
        metrics["rating_trees"] = rating.n_trees
        for key, value in rating.booster.best_score.get("valid_0", {}).items():
            metrics[f"rating_valid_{key}"] = float(value)
    return metrics


def build_metadata(
    data: Dataset,
    label: str,
    simulated: bool,
    config: TrainConfig,
    models: TrainedModels,
    timings: dict[str, float],
    text_model: str | None,
) -> dict[str, Any]:
    """Everything a bundle says about itself."""
    return {
        "version": new_version_id(),
        "created_at": datetime.now(UTC).isoformat(),
        "data": label,
        "simulated": simulated,
        "data_hash": data.content_hash(),
        "counts": {
            "users": data.n_users,
            "anime": data.n_items,
            "ratings": len(data.ratings),
            "dropped_unknown_anime": data.dropped_unknown_anime,
        },
        "text_model": text_model,
        "preset": config.preset,
        "params": asdict(config),
        "samples": models.samples,
        "ranker_features": models.feature_names,
        "metrics": training_metrics(models),
        "timings_seconds": timings,
        "libraries": library_versions(),
    }


def train_bundle(
    settings: Settings,
    sources: DataSources,
    config: TrainConfig,
    with_text: bool = True,
    register: bool = True,
    cluster: Cluster | None = None,
) -> TrainOutcome:
    """Run the whole training job and return the saved (and registered) bundle (the heavy
    stages on ``cluster`` when given: the same bundle format)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = sources.load(cluster)
    timings["load"] = time.perf_counter() - started
    mark = time.perf_counter()
    text = compute_text_embeddings(data, settings, with_text)
    timings["text_embeddings"] = time.perf_counter() - mark
    held, _ = fixed_split(data, settings.seed)  # what retrain compares champions on
    models = fit_all(data.subset(~held), config, text, cluster)
    timings.update(models.timings)
    has_text = bool(np.any(text))
    timings["total"] = time.perf_counter() - started  # before saving, so the bundle records it
    metadata = build_metadata(
        data,
        sources.label,
        sources.is_demo,
        config,
        models,
        timings,
        settings.text_model if has_text else None,
    )
    metadata["holdout"] = holdout_record(data.ratings, held, settings.seed)
    if cluster is not None:
        metadata["cluster"] = cluster.describe()
    bundle = Bundle(models, metadata)
    directory = bundle.save(settings.bundles_dir / bundle.version)
    registered = log_bundle(settings, directory, bundle) if register else None
    return TrainOutcome(bundle, directory, registered)


def build_snapshot_metadata(
    data: Dataset,
    label: str,
    config: TrainConfig,
    models: TrainedModels,
    text: np.ndarray,
    settings: Settings,
) -> dict[str, Any]:
    """Metadata of a bundle trained on a database snapshot (retrain)."""
    text_model = settings.text_model if bool(np.any(text)) else None
    return build_metadata(data, label, False, config, models, dict(models.timings), text_model)
