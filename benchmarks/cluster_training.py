"""Training in this process against training through the Dask path: wall time per stage, and
the peak memory of this process and of each Dask worker process.

    python benchmarks/cluster_training.py --data /tmp/synth-14m --mode local
    python benchmarks/cluster_training.py --data /tmp/synth-14m --mode cluster   # LocalCluster
    python benchmarks/cluster_training.py --data DIR --mode cluster --scheduler tcp://HOST:8786

Without ``--scheduler`` the cluster is a LocalCluster of two worker processes with two threads
each on this machine (whose peak memory is read from /proc: VmHWM). Results are merged into
``--out``/cluster_training.json under ``LABEL/MODE``.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import console, rss_mb

from otaku.cluster import Cluster, connected
from otaku.config import Settings
from otaku.data.files import DataSources
from otaku.jobs.train import train_bundle
from otaku.pipeline.presets import preset_config


def _peak_mb(pid: int) -> float:
    """VmHWM of a process on this machine, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def _cluster(scheduler: str | None) -> Iterator[Cluster]:
    if scheduler is not None:
        with connected(scheduler) as cluster:
            yield cluster
        return
    from distributed import LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=None) as local,
        connected(str(local.scheduler_address)) as cluster,
    ):
        yield cluster


def _run(args: argparse.Namespace) -> dict[str, Any]:
    sources = DataSources.from_directory(args.data)
    config = preset_config(args.preset, 42)
    home = Path(tempfile.mkdtemp(prefix="otaku-cluster-bench-"))
    settings = Settings(home=home, text_model=args.text_model)
    if args.cache is not None:
        (home / "cache").symlink_to(args.cache.resolve())
    started = time.perf_counter()
    if args.mode == "local":
        outcome = train_bundle(settings, sources, config, with_text=True, register=False)
        workers: dict[str, float] = {}
        description: Any = "this process"
    else:
        with _cluster(args.scheduler) as cluster:
            outcome = train_bundle(
                settings, sources, config, with_text=True, register=False, cluster=cluster
            )
            pids = cluster.client.run(os.getpid)
            local = args.scheduler is None
            workers = {w: _peak_mb(pid) for w, pid in pids.items()} if local else {}
            description = cluster.describe()
    meta = outcome.bundle.metadata
    return {
        "mode": args.mode,
        "data": str(args.data),
        "ratings": meta["counts"]["ratings"],
        "users": meta["counts"]["users"],
        "preset": args.preset,
        "wall_seconds": time.perf_counter() - started,
        "timings_seconds": meta["timings_seconds"],
        "peak_rss_mb_this_process": rss_mb(),
        "peak_rss_mb_per_worker": workers,
        "cluster": description,
        "metrics": meta["metrics"],
        "bundle": str(outcome.directory),
    }


def main() -> None:
    """Train once in the chosen mode and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--mode", choices=["local", "cluster"], required=True)
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--label", default=None)
    parser.add_argument("--cache", type=Path, default=Path(".otaku/cache"))
    parser.add_argument("--text-model", default=Settings().text_model)
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    args = parser.parse_args()
    result = _run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    record = args.out / "cluster_training.json"
    runs = json.loads(record.read_text()) if record.exists() else {}
    runs[f"{args.label or args.data.name}/{args.mode}"] = result
    record.write_text(json.dumps(runs, indent=2, default=str) + "\n")
    console.print_json(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
