"""CPU cost of one impression: on the request path, in the writer, in the database.

    python benchmarks/impressions.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    python benchmarks/impressions.py --database-url sqlite:////tmp/impressions.db --writer thread

Builds pages the way the service does (`OnlineExperiments.shown`, metrics included), and
measures, per impression: the CPU the request thread spends recording it; the CPU this process
spends in all (with ``--writer thread``, the writer thread's batching and COPY included); with
``--writer process`` (what forked server workers use), the CPU of the writer process; and, on
PostgreSQL on this machine, the CPU of the server's processes (backends, WAL writer,
checkpointer) while the batches go in. Repeated for pages of 10 and 50 items and several
volumes, so the figures say how the cost grows. Nothing is timed by wall clock alone: CPU
time does not count waiting.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from common import console, database_cpu_seconds, write_json
from rich.table import Table

from otaku.config import Settings
from otaku.experiments.definition import Assignment
from otaku.experiments.writer_process import ImpressionPipe
from otaku.pipeline.pages import Page, Recommended
from otaku.service.forked import fork_impression_writer
from otaku.service.metrics import ServiceMetrics
from otaku.service.online import OnlineExperiments
from otaku.storage.database import Database, create_db_engine, migrate


def _page(items: int) -> Page:
    """A page of ``items`` anime shaped like the service's (only the ids are recorded)."""
    from types import SimpleNamespace

    entries = [
        Recommended(SimpleNamespace(anime_id=1000 + i), 1.0, 8.0, "")  # type: ignore[arg-type]
        for i in range(items)
    ]
    return Page(strategy="default", offset=0, items=entries, timings={})


def _writer_cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(
    database: Database,
    impressions: int,
    items: int,
    postgres: bool,
    writer: tuple[ImpressionPipe, int] | None,
) -> dict[str, Any]:
    """Per-impression CPU (µs) of recording ``impressions`` pages of ``items`` anime."""
    pipe, writer_pid = writer if writer is not None else (None, None)
    online = OnlineExperiments(database, Settings(), ServiceMetrics(), pipe)
    page = _page(items)
    assignment = Assignment(experiment="bench", arm="default", strategy="default")
    online.shown(page, 1, assignment, "1", time.perf_counter())  # starts the writer
    online.impressions.flush()
    database_before = database_cpu_seconds() if postgres else 0.0
    process_before = time.process_time()
    writer_before = _writer_cpu_seconds(writer_pid)
    thread_before = time.thread_time()
    for user in range(impressions):
        online.shown(page, user, assignment, "1", time.perf_counter())
    on_path = time.thread_time() - thread_before
    wall = time.perf_counter()
    online.impressions.flush(timeout=600)
    wall = time.perf_counter() - wall
    in_process = time.process_time() - process_before
    in_writer = _writer_cpu_seconds(writer_pid) - writer_before
    time.sleep(0.5)  # let the WAL writer catch up before reading the server's CPU
    in_database = (database_cpu_seconds() - database_before) if postgres else float("nan")
    counts = online.impressions.counts
    online.impressions.close()
    if counts.dropped or counts.failed:
        raise SystemExit(f"impressions lost during the benchmark: {counts}")
    scale = 1e6 / impressions
    return {
        "impressions": impressions,
        "items_per_page": items,
        "request_path_us": on_path * scale,
        "process_us": in_process * scale,
        "writer_process_us": in_writer * scale,
        "database_us": in_database * scale,
        "writer_seconds_after_last": wall,
    }


def main() -> None:
    """Measure each volume and page size; print a table and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--volumes", default="2000,8000", help="Impressions per run.")
    parser.add_argument("--items", default="10,50", help="Anime per page.")
    parser.add_argument(
        "--writer",
        choices=("process", "thread"),
        default="process",
        help="A writer process fed by a pipe (forked server workers) or a thread in this one.",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    database = Database(create_db_engine(args.database_url))
    migrate(database.engine)
    postgres = database.engine.dialect.name == "postgresql"
    writer = None
    if args.writer == "process":
        pipe = ImpressionPipe()
        writer = pipe, fork_impression_writer(Settings(database_url=args.database_url), pipe)
    try:
        runs = [
            measure(database, int(volume), int(items), postgres, writer)
            for items in args.items.split(",")
            for volume in args.volumes.split(",")
        ]
    finally:
        if writer is not None:
            os.kill(writer[1], signal.SIGTERM)
            os.waitpid(writer[1], 0)
    _print(runs, f"CPU per impression ({database.engine.dialect.name}, {args.writer} writer)")
    write_json(
        args.out, {"database": database.engine.dialect.name, "writer": args.writer, "runs": runs}
    )


def _print(runs: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    columns = ("impressions", "items", "request path µs", "this process µs", "writer process µs")
    for column in (*columns, "database µs"):
        table.add_column(column, justify="right")
    for run in runs:
        table.add_row(
            str(run["impressions"]),
            str(run["items_per_page"]),
            f"{run['request_path_us']:.1f}",
            f"{run['process_us']:.1f}",
            f"{run['writer_process_us']:.1f}",
            f"{run['database_us']:.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
