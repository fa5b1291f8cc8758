"""Shared helpers of the benchmark scripts: loading a bundle, percentiles, printing tables."""

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
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


def database_cpu_seconds() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine (backends, WAL
    writer, checkpointer): what a load cost the database, read before and after it."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] in {"postgres", "postmaster"}:
                times = process.cpu_times()
                total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _wait_for_warm_up(url: str, timeout: float = 900.0) -> None:
    """Block until the server has precomputed its known users' first pages."""
    started = time.monotonic()
    while not (model := httpx.get(f"{url}/v1/model", timeout=10).json())["warm_up_done"]:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"warm-up not done after {timeout:.0f} s: {model}")
        time.sleep(1.0)
    console.print(
        f"server warmed {model['warmed_users']} users in {time.monotonic() - started:.0f} s"
    )


@contextmanager
def serving(
    port: int, workers: int = 1, bundle: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """``otaku serve`` in a child process (the champion, or ``bundle``), ready and warmed
    up; yields its URL and pid, and stops it on exit. Its log goes to $TMPDIR."""
    command = [sys.executable, "-m", "otaku.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    if bundle is not None:
        command += ["--bundle", str(bundle)]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"otaku-serve-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited early; see {log}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server was not ready within 10 minutes")
            time.sleep(0.5)
        _wait_for_warm_up(url)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)
