"""`otaku evaluate`: the DESIGN.md protocol for every strategy and baseline in one run."""

import time
from dataclasses import asdict
from pathlib import Path

from otaku.cluster import Cluster
from otaku.config import Settings
from otaku.data.files import DataSources
from otaku.evaluation.reference import lightfm_interaction_split_metrics
from otaku.evaluation.report import write_reports
from otaku.evaluation.runner import EvaluationResult, evaluate_all
from otaku.evaluation.split import split_users
from otaku.evaluation.tuning import GRIDS, QUICK_GRIDS, tune_sources
from otaku.jobs.train import compute_text_embeddings
from otaku.pipeline.components import fit_source
from otaku.pipeline.sources import FitInputs
from otaku.pipeline.training import TrainConfig, fit_all


def run_evaluation(
    settings: Settings,
    sources: DataSources,
    config: TrainConfig,
    out_dir: Path,
    with_text: bool = True,
    seed_users: int | None = 100,
    lightfm_own: bool = True,
    k: int = 10,
    tune: bool = True,
    quick_grids: bool = False,
    cluster: Cluster | None = None,
) -> tuple[EvaluationResult, Path, Path]:
    """Split, train everything on the training part, tune the baselines on a validation split
    of the training part, evaluate, write Markdown + JSON."""
    started = time.perf_counter()
    data = sources.load(cluster)
    split = split_users(data, seed=settings.seed)
    text = compute_text_embeddings(data, settings, with_text)
    models = fit_all(split.train, config, text, cluster)
    tuned_at = time.perf_counter()
    tuned = {}
    if tune:
        grids = QUICK_GRIDS if quick_grids else GRIDS
        tuned = tune_sources(split.train, config.components.sources, grids, settings.seed, k)
    inputs = FitInputs(split.train, text, models.components.lightfm, settings.seed)
    baselines = {name: fit_source(choice.spec, inputs) for name, choice in tuned.items()}
    tuning_seconds = time.perf_counter() - tuned_at
    result = evaluate_all(models, split, k, seed_users, settings.seed, baselines)
    result.tuning = {
        name: {
            "chosen": dict(choice.spec.params),
            "validation_ndcg": choice.validation_ndcg,
            "tried": choice.tried,
        }
        for name, choice in tuned.items()
    }
    if lightfm_own:
        result.lightfm_own = lightfm_interaction_split_metrics(data, config.components.lightfm)
    result.info = {
        "data": sources.label,
        "simulated": sources.is_demo,
        "data_hash": data.content_hash(),
        "users": data.n_users,
        "anime": data.n_items,
        "ratings": len(data.ratings),
        "dropped_unknown_anime": data.dropped_unknown_anime,
        "test_users": len(split.test_users),
        "heldout_ratings": len(split.heldout),
        "capped_strategy_users": seed_users or "all",
        "ranker_trees": models.ranker.num_trees(),
        "trained_on": cluster.describe() if cluster is not None else "this process",
        "training_facts": models.facts,
        "params": asdict(config),
        "timings_seconds": {
            **models.timings,
            "baseline_tuning": tuning_seconds,
            "total": time.perf_counter() - started,
        },
    }
    markdown, table = write_reports(result, out_dir, k)
    return result, markdown, table
