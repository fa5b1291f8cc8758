"""Training and serving cost at one data size: wall time and peak RSS per stage (parse,
each component, the ranker, the rating model, bundle save), engine load, known-user latency
and the PostgreSQL load rate. Run it once per size; the table in scale.md fits how each
stage grows with the number of ratings over every size recorded in scale.json.

    python benchmarks/scale.py --data /tmp/synth-13k --label 2.4M --out reports/benchmarks \
        [--preset fast] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]
"""

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import console, current_rss_mb, percentiles, time_calls

from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.data.files import DataSources
from otaku.jobs.train import compute_text_embeddings
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.components import fit_source
from otaku.pipeline.presets import preset_config
from otaku.pipeline.sources import FitInputs
from otaku.pipeline.training import TrainConfig, fit_all
from otaku.storage.database import Database


class StagePeaks(logging.Handler):
    """Wall time and peak RSS of each stage; a stage ends when the pipeline logs
    "fitted NAME in …" (or when :meth:`stage` ends); a sampler thread reads the RSS."""

    def __init__(self, progress: Path | None = None) -> None:
        super().__init__(logging.INFO)
        self.progress = progress  # the stages so far, rewritten as each ends (long runs)
        self.stages: dict[str, dict[str, float]] = {}
        self._peak = 0.0
        self._started = time.perf_counter()
        self._prefix = ""
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self._peak = max(self._peak, current_rss_mb())

    def _close_stage(self, name: str) -> None:
        now = time.perf_counter()
        peak = max(self._peak, current_rss_mb())
        self.stages[name] = {"seconds": now - self._started, "peak_rss_mb": peak}
        self._started, self._peak = now, current_rss_mb()
        if self.progress is not None:
            self.progress.write_text(json.dumps(self.stages, indent=2))

    def emit(self, record: logging.LogRecord) -> None:
        found = re.match(r"fitted (\S+) in", record.getMessage())
        if found:
            name = found.group(1)
            if name == "ranker":
                self._close_stage("ranker (candidates + boosting)")
                self._prefix = ""
            else:
                self._close_stage(self._prefix + name)

    @contextmanager
    def stage(self, name: str, prefix: str = "") -> Iterator[None]:
        """A stage measured around a block; ``prefix`` names the components fitted in it."""
        self._close_stage("(between stages)")
        self._prefix = prefix
        yield
        self._close_stage(name)
        self._prefix = ""

    def close(self) -> None:
        self._stop.set()
        super().close()


def _latency(bundle: Path) -> dict[str, Any]:
    out = bundle.parent / f"latency-{bundle.name}.json"
    script = Path(__file__).resolve().parent / "latency.py"
    command = [sys.executable, str(script), "--bundle", str(bundle), "--requests", "200"]
    subprocess.run([*command, "--seed-users", "0", "--out", str(out)], check=True)
    figures = json.loads(out.read_text())
    known = figures["questions"]["known user (default)"]
    return {
        "engine_load_seconds": figures["engine_load_seconds"],
        "engine_rss_mb": figures["engine_rss_mb"],
        "engine_rss_after_requests_mb": figures["rss_after_requests_mb"],
        "engine_peak_rss_mb": figures["peak_rss_mb"],
        "known_user_first_p50_ms": known["p50_ms"],
        "known_user_first_p99_ms": known["p99_ms"],
        "known_user_warmed_p50_ms": figures["questions"]["known user (default), warmed"]["p50_ms"],
    }


def _postgres_figures(server: str, sources: DataSources) -> dict[str, float]:
    """Load rate into a fresh database, then the per-request read on the loaded table."""
    from sqlalchemy import create_engine, text

    from otaku.jobs.load import load_dataset
    from otaku.storage.database import create_db_engine, migrate

    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    name = f"otaku_scale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        database = Database(create_db_engine(f"{server}/{name}"))
        migrate(database.engine)
        data = sources.load()
        outcome = load_dataset(database, data, pool_share=0.0, seed=42)
        reads = _request_reads(database, data.users.external_ids)
        database.engine.dispose()
        return {
            "postgres_ratings_per_second": outcome.ratings_per_second,
            "postgres_load_seconds": outcome.seconds,
            "postgres_read_p50_ms": reads["p50_ms"],
            "postgres_read_p99_ms": reads["p99_ms"],
        }
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _request_reads(database: Database, user_ids: np.ndarray, n: int = 500) -> dict[str, float]:
    """The database read a known user's request makes (their current ratings), timed over
    ``n`` random users of the loaded table."""
    from otaku.service.users import UserDirectory

    directory = UserDirectory(database)
    chosen = np.random.default_rng(42).choice(user_ids, size=min(n, len(user_ids)), replace=False)
    directory.current_ratings(int(chosen[0]))  # the pool's first connection is not a read
    return percentiles(time_calls([partial(directory.current_ratings, int(u)) for u in chosen]))


def _slopes(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Per stage, the exponent b of seconds ≈ a · ratings^b (least squares on logs)."""
    slopes: dict[str, float] = {}
    names = set.intersection(*(set(run["stages"]) for run in runs)) if runs else set()
    for name in sorted(names):
        x = np.log([run["ratings"] for run in runs])
        y = np.log([max(run["stages"][name]["seconds"], 1e-3) for run in runs])
        if len(set(x)) >= 2:
            slopes[name] = float(np.polyfit(x, y, 1)[0])
    return slopes


def _markdown(runs: list[dict[str, Any]]) -> str:
    runs = sorted(runs, key=lambda run: run["ratings"])
    slopes = _slopes(runs)
    header = "| stage | " + " | ".join(f"{run['label']} s / peak GB" for run in runs)
    lines = [header + " | slope |", "|---|" + "---:|" * (len(runs) + 1)]
    names = list(dict.fromkeys(name for run in runs for name in run["stages"]))  # run order
    for name in names:
        cells = []
        for run in runs:
            stage = run["stages"].get(name)
            cells.append(
                f"{stage['seconds']:.1f} / {stage['peak_rss_mb'] / 1024:.1f}" if stage else "–"
            )
        slope = f"{slopes[name]:.2f}" if name in slopes else "–"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {slope} |")
    for key in (
        "ratings",
        "users",
        "engine_load_seconds",
        "engine_rss_mb",
        "engine_rss_after_requests_mb",
        "engine_peak_rss_mb",
        "known_user_first_p50_ms",
        "known_user_first_p99_ms",
        "known_user_warmed_p50_ms",
        "postgres_ratings_per_second",
        "postgres_read_p50_ms",
        "postgres_read_p99_ms",
    ):
        values = [run.get(key) for run in runs]
        cells = [f"{value:,.1f}" if isinstance(value, float) else f"{value}" for value in values]
        lines.append(f"| {key} | " + " | ".join(cells) + " | |")
    return "\n".join(lines) + "\n"


def _fit_one_source(
    peaks: StagePeaks, data: Dataset, text: np.ndarray, config: TrainConfig, name: str
) -> None:
    """Fit one configured source alone and print its time and peak RSS."""
    specs = {spec.name: spec for spec in config.components.sources}
    inputs = FitInputs(data, text, None, config.components.seed)
    with peaks.stage(f"source.{name} alone"):
        fit_source(specs[name], inputs)
    peaks.close()
    for stage, figures in peaks.stages.items():
        console.print(f"{stage}: {figures['seconds']:.1f} s, peak {figures['peak_rss_mb']:,.0f} MB")


def _arguments() -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="A Kaggle-shaped directory.")
    parser.add_argument("--anime", type=Path, default=None)
    parser.add_argument("--synopses", type=Path, default=None)
    parser.add_argument("--ratings", type=Path, action="append", default=None)
    parser.add_argument("--label", default=None, help="Name of this size in the table.")
    parser.add_argument(
        "--table-only", action="store_true", help="Rewrite scale.md from scale.json only."
    )
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--postgres", default=None, help="A server URL to time the load on.")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    parser.add_argument("--bundles", type=Path, default=Path("/tmp/otaku-scale-bundles"))
    parser.add_argument(
        "--only",
        choices=("serving", "postgres"),
        default=None,
        help="Measure again only the serving figures (on the size's saved bundle) or the "
        "PostgreSQL ones of an already recorded size.",
    )
    parser.add_argument(
        "--source", default=None, help="Only fit this configured source (time and peak RSS)."
    )
    return parser, parser.parse_args()


def _data_sources(args: argparse.Namespace) -> DataSources:
    if args.data is not None:
        return DataSources.from_directory(args.data)
    return DataSources(args.anime, args.synopses, tuple(args.ratings or ()), seed=42)


def _remeasure(args: argparse.Namespace, record: Path) -> None:
    """The serving or PostgreSQL figures of one recorded size, measured again into it."""
    if args.label is None or (args.only == "postgres" and not args.postgres):
        raise SystemExit("--only needs --label of a recorded size (and postgres: --postgres)")
    runs = json.loads(record.read_text())
    matching = [run for run in runs if run["label"] == args.label]
    if not matching:
        raise SystemExit(f"no size labelled {args.label!r} in {record}")
    if args.only == "serving":
        matching[0].update(_latency(args.bundles / args.label))
    else:
        matching[0].update(_postgres_figures(args.postgres, _data_sources(args)))
    record.write_text(json.dumps(runs, indent=2))
    (args.out / "scale.md").write_text(_markdown(runs))
    console.print(_markdown(runs))


def main() -> None:
    """Measure one size, add it to scale.json and rewrite scale.md."""
    parser, args = _arguments()
    record = args.out / "scale.json"
    if args.table_only:
        (args.out / "scale.md").write_text(_markdown(json.loads(record.read_text())))
        return
    if args.label is None:
        parser.error("--label is required to measure a size")
    if args.only:
        _remeasure(args, record)
        return
    settings = Settings()
    args.bundles.mkdir(parents=True, exist_ok=True)
    sources = _data_sources(args)
    peaks = StagePeaks(args.bundles / f"stages-{args.label}.json")
    logging.getLogger("otaku").addHandler(peaks)
    logging.getLogger("otaku").setLevel(logging.INFO)
    started = time.perf_counter()
    with peaks.stage("parse + validate + dataset"):
        data = sources.load()
    with peaks.stage("text embeddings (cached)"):
        text = compute_text_embeddings(data, settings, enabled=True)
    config = preset_config(args.preset, settings.seed)
    if args.source is not None:
        _fit_one_source(peaks, data, text, config, args.source)
        return
    with peaks.stage("fit_all (the rest)", prefix="stage_one."):
        models = fit_all(data, config, text)
    bundle_dir = args.bundles / args.label
    shutil.rmtree(bundle_dir, ignore_errors=True)  # an earlier run's bundle of this size
    with peaks.stage("bundle save"):
        Bundle(models, {"version": f"scale-{args.label}", "preset": args.preset}).save(bundle_dir)
    total = time.perf_counter() - started
    peaks.close()
    run: dict[str, Any] = {
        "label": args.label,
        "preset": args.preset,
        "ratings": len(data.ratings),
        "users": data.n_users,
        "items": data.n_items,
        "training_seconds": total,
        "stages": {k: v for k, v in peaks.stages.items() if k != "(between stages)"},
        "samples": models.samples,
    }
    run.update(_latency(bundle_dir))
    if args.postgres:
        run.update(_postgres_figures(args.postgres, sources))
    earlier = json.loads(record.read_text()) if record.exists() else []
    runs = [earlier_run for earlier_run in earlier if earlier_run["label"] != args.label]
    runs.append(run)
    record.write_text(json.dumps(runs, indent=2))
    (args.out / "scale.md").write_text(_markdown(runs))
    console.print(_markdown(runs))


if __name__ == "__main__":
    main()
