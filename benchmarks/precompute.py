"""Users per second of `otaku precompute` (rank with the served engine + write in one
transaction) on a bundle and a database, for a sample of its known users.

    python benchmarks/precompute.py --bundle DIR --database-url URL --users 5000 --processes 2
    python benchmarks/precompute.py --bundle DIR --database-url URL --scheduler tcp://HOST:8786
"""

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import console, load_bundle

from otaku.cluster import connected
from otaku.config import Settings
from otaku.jobs.precompute import precompute_rankings
from otaku.jobs.precompute_cluster import ModelSource
from otaku.pipeline.engine import Engine
from otaku.storage.database import Database, create_db_engine, migrate


def main() -> None:
    """Time one precompute run and print users/s and the time for every known user."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--scheduler", default=None, help="Rank on this Dask cluster.")
    args = parser.parse_args()
    bundle, _ = load_bundle(args.bundle)
    engine = Engine(bundle.models, bundle.metadata)
    database = Database(create_db_engine(args.database_url))
    migrate(database.engine)
    known = engine.known_user_ids
    sample = np.random.default_rng(42).choice(
        known, size=min(args.users, len(known)), replace=False
    )
    with ExitStack() as stack:
        cluster = None if args.scheduler is None else stack.enter_context(connected(args.scheduler))
        source = ModelSource.of(Settings(bundle_path=args.bundle), None)
        if cluster is not None:  # the workers load the model before the clock starts
            warm = precompute_rankings(
                engine, database, 1, sample[:8], cluster=cluster, model_source=source
            )
            console.print(f"workers loaded model {warm.model_version}")
        started = time.perf_counter()
        outcome = precompute_rankings(
            engine, database, args.processes, sample, cluster=cluster, model_source=source
        )
        seconds = time.perf_counter() - started
    rate = outcome.users / seconds
    where = f"on {args.scheduler}" if cluster else f"with {args.processes} process(es)"
    console.print(
        f"{outcome.users:,} users in {seconds:.1f} s {where}: "
        f"{rate:,.0f} users/s; all {len(known):,} known users: ~{len(known) / rate / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
