"""Shared helpers of the benchmark scripts: loading a bundle, percentiles, printing tables."""

import json
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from otaku.config import Settings
from otaku.pipeline.bundle import Bundle

console = Console(soft_wrap=True)


def load_bundle(path: Path | None) -> tuple[Bundle, str]:
    """The bundle at ``path``, else the registry's champion (``OTAKU_*`` settings)."""
    if path is not None:
        return Bundle.load(path), str(path)
    from otaku.storage.registry import champion_version, load_registered

    settings = Settings()
    version = champion_version(settings)
    if version is None:
        raise SystemExit(f"no champion in {settings.tracking_uri}: pass --bundle or train first")
    return load_registered(settings, version), f"registry champion v{version}"


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """n, p50, p95, p99, mean and max, in milliseconds."""
    values = np.asarray(seconds) * 1000.0
    return {
        "n": float(len(values)),
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": float(values.mean()),
        "max_ms": float(values.max()),
    }


def time_calls(calls: Sequence[Callable[[], Any]]) -> list[float]:
    """Wall time of each call, in seconds."""
    timings = []
    for call in calls:
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def rss_mb() -> float:
    """Peak resident memory of this process, MB: VmHWM, the high-water mark of this
    process's own memory. Not ``ru_maxrss``: Linux carries that over a fork and exec, so a
    benchmark started by a big parent (scale.py after training) would report the parent's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """Resident memory of this process now, MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def print_latency_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    """A table of latency percentiles, one row per question."""
    table = Table(title=title)
    for column in ("question", "n", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms"):
        table.add_column(column, justify="left" if column == "question" else "right")
    for name, figures in rows.items():
        table.add_row(
            name,
            f"{figures['n']:.0f}",
            *(f"{figures[key]:.2f}" for key in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms")),
        )
    console.print(table)


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Save the figures as JSON (when a path is given)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))
    console.print(f"figures written to {path}")
