"""In-process latency of every question, and the pandas reference of the seed algorithm timed
in the same run on the same bundle.

    python benchmarks/latency.py --bundle .otaku/bundles/<version> \
        --out reports/benchmarks/latency.json

Without ``--bundle`` the registry's champion is used (``OTAKU_HOME`` / ``OTAKU_MLFLOW_*``).
"""

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    console,
    current_rss_mb,
    load_bundle,
    percentiles,
    print_latency_table,
    rss_mb,
    time_calls,
    write_json,
)
from reference_seed import reference_recommend

from otaku.pipeline.engine import Engine
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.profiles import NewUser


def _model_sizes(engine: Engine) -> dict[str, Any]:
    ranker = engine.models.ranker
    rating = engine.parts.rating_model
    assert rating is not None and rating.booster is not None
    ranker_dump = ranker.dump_model(num_iteration=ranker.best_iteration or None)
    return {
        "ranker_trees": len(ranker_dump["tree_info"]),
        "ranker_max_leaves": max(tree["num_leaves"] for tree in ranker_dump["tree_info"]),
        "rating_trees": rating.n_trees,
        "rating_num_leaves_param": rating.config.num_leaves,
        "items": engine.table.n_items,
        "known_users": len(engine.known_user_ids),
    }


def _questions(
    engine: Engine, rng: np.random.Generator, n: int
) -> tuple[dict[str, list[Any]], list[int]]:
    users = rng.choice(
        engine.known_user_ids, size=min(n, len(engine.known_user_ids)), replace=False
    )
    genres = engine.genres
    popular = engine.table.anime_ids[np.argsort(-np.nan_to_num(engine.table.members))[:500]]
    by_members = np.argsort(-np.nan_to_num(engine.table.members))
    # titles long enough for one doubled letter to stay above the 0.9 Jaro-Winkler threshold
    names = [engine.table.names[i] for i in by_members if len(engine.table.names[i]) >= 8][:n]
    action = ItemFilter(include_genres=("Action",), min_score=7.0, types=("TV",))

    def preferences() -> dict[str, float]:
        chosen = rng.choice(genres, size=int(rng.integers(1, 4)), replace=False)
        return {str(genre): float(rng.uniform(0.3, 1.0)) for genre in chosen}

    def ratings() -> dict[int, float]:
        picked = rng.choice(popular, size=5, replace=False)
        return {int(a): float(rng.integers(5, 11)) for a in picked}

    questions: dict[str, list[Any]] = {
        "known user (default)": [
            lambda u=int(u): engine.recommend_for_user(u, k=10) for u in users
        ],
        "known user + filters (default)": [
            lambda u=int(u): engine.recommend_for_user(u, k=10, item_filter=action) for u in users
        ],
        "new user, nothing (default)": [
            lambda: engine.recommend_for_new_user(NewUser()) for _ in users
        ],
        "new user, genres (default)": [
            lambda p=p: engine.recommend_for_new_user(NewUser(preferences=p))
            for p in [preferences() for _ in users]
        ],
        "new user, 5 ratings (default)": [
            lambda r=r: engine.recommend_for_new_user(NewUser(ratings=r))
            for r in [ratings() for _ in users]
        ],
        "similar to an anime": [
            lambda a=int(a): engine.similar(a, k=10) for a in rng.choice(popular, size=len(users))
        ],
        "similar to a title with a typo": [
            lambda t=name[:-1] + name[-1] * 2: engine.similar(
                int(engine.table.anime_ids[engine.find_title(t).item]), k=10
            )
            for name in names
        ],
        "search by name": [lambda q=name[:5]: engine.search(q) for name in names],
        "known user, page 3 (default)": [
            lambda u=int(u): engine.recommend_for_user(u, k=10, offset=20) for u in users
        ],
    }
    return questions, [int(u) for u in users]


def _stage_means(engine: Engine, calls: list[Any]) -> dict[str, float]:
    """Mean milliseconds per stage of first requests (caches cleared first)."""
    engine.clear_caches()
    totals: dict[str, float] = {}
    for call in calls:
        for stage, seconds in call().timings.items():
            totals[stage] = totals.get(stage, 0.0) + seconds * 1000.0 / len(calls)
    return totals


def _seed_comparison(
    engine: Engine, rng: np.random.Generator, n_users: int
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    users = [int(u) for u in rng.choice(engine.known_user_ids, size=n_users, replace=False)]
    reference = time_calls([partial(reference_recommend, engine.models, u) for u in users])
    cold = time_calls([partial(engine.recommend_for_user, u, strategy="seed") for u in users])
    warm = time_calls([partial(engine.recommend_for_user, u, strategy="seed") for u in users])
    default = time_calls([partial(engine.recommend_for_user, u) for u in users])
    agree = all(
        reference_recommend(engine.models, u)["anime_id"].tolist()
        == [item.anime.anime_id for item in engine.recommend_for_user(u, strategy="seed").items]
        for u in users
    )
    rows = {
        "pandas reference (seed)": percentiles(reference),
        "engine seed, first request": percentiles(cold),
        "engine seed, repeated (cached)": percentiles(warm),
        "engine default": percentiles(default),
    }
    mean_reference = float(np.mean(reference))
    summary = {
        "users": n_users,
        "same_answers_as_reference": agree,
        "speedup_seed_first_request": mean_reference / float(np.mean(cold)),
        "speedup_seed_cached": mean_reference / float(np.mean(warm)),
        "speedup_default": mean_reference / float(np.mean(default)),
    }
    return rows, summary


def main() -> None:
    """Run the benchmark and print (and optionally save) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=300, help="Requests per question.")
    parser.add_argument("--seed-users", type=int, default=8, help="Users for the seed table.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    threadpool_limits(1, user_api="blas")  # as the service runs (see otaku.service.app)

    started = time.perf_counter()
    bundle, source = load_bundle(args.bundle)
    engine = Engine(bundle.models, bundle.metadata)
    load_seconds = time.perf_counter() - started
    loaded_rss = current_rss_mb()
    console.print(f"bundle {bundle.version} from {source}; engine ready in {load_seconds:.1f} s")

    questions, sampled_users = _questions(engine, rng, args.requests)
    for calls in questions.values():  # warm-up: first-touch costs are not request costs
        for call in calls[:5]:
            call()
    engine.clear_caches()  # every measured request below is a first request...
    rows = {name: percentiles(time_calls(calls)) for name, calls in questions.items()}
    rows["known user, page 3, after page 1"] = rows.pop("known user, page 3 (default)")
    known = questions["known user (default)"]
    stages = _stage_means(engine, known[:100])
    # ...and these come after the service's warm-up has computed those users' first pages
    engine.warm(user for user in sampled_users)
    rows["known user (default), warmed"] = percentiles(time_calls(known))
    print_latency_table("In-process latency per question (k=10)", rows)
    console.print(
        "known user (default), mean ms per stage of a first request: "
        + ", ".join(f"{stage} {ms:.2f}" for stage, ms in stages.items())
    )

    seed_rows: dict[str, dict[str, float]] = {}
    summary: dict[str, Any] = {}
    if args.seed_users:  # 0 skips the pandas reference (slow at full size)
        seed_rows, summary = _seed_comparison(engine, rng, args.seed_users)
        print_latency_table("Seed algorithm: pandas reference vs engine (same bundle)", seed_rows)
    after_requests_rss, peak_rss = current_rss_mb(), rss_mb()  # before dump_model's JSON
    sizes = _model_sizes(engine)
    facts = {
        "engine_load_seconds": load_seconds,
        "engine_rss_mb": loaded_rss,  # right after the load: the engine's steady size
        "rss_after_requests_mb": after_requests_rss,  # plus caches and allocator slack
        "peak_rss_mb": peak_rss,  # includes the load's transients
        "torch_imported": "torch" in sys.modules,
        **sizes,
        **summary,
    }
    for key, value in facts.items():
        console.print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    write_json(
        args.out,
        {
            "bundle": bundle.version,
            "source": source,
            "questions": rows,
            "known_user_stages_ms": stages,
            "seed": seed_rows,
            **facts,
        },
    )


if __name__ == "__main__":
    main()
