"""What one setting costs over HTTP: two servers, interleaved rounds, paired differences.

    python benchmarks/http_ab.py --bundle DIR --setting OTAKU_IMPRESSIONS=false,true \\
        --rounds 10 --duration 20 --concurrency 8 --workers 2 --precompute

Starts ``otaku serve`` twice on the same bundle and database, once with each value of the
setting (A, then B), and loads them in turn with `http_load.py`'s mixed workload: round r
loads A then B, or B then A on odd rounds, so a machine that gets slower or faster during
the run (other tenants, thermal limits) weighs on both alike. Each round gives p50, p99,
throughput and the CPU per request of the server and of PostgreSQL (every postgres process
on this machine) for both; the cost of B is the mean of the per-round differences B − A
with its 95% Student-t interval. One long run per setting would instead compare two
moments of a shared machine, which here differ by more than the effect.
"""

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import console, database_cpu_seconds, percentiles, serving, write_json
from http_load import Request, load, precompute, tree_cpu_seconds, workload
from rich.table import Table

from otaku.experiments.stats import mean_interval

FIGURES = (
    "p50_ms",
    "p99_ms",
    "throughput_rps",
    "cpu_ms_per_request",
    "database_cpu_ms_per_request",
)


def _round(url: str, pid: int, requests: list[Request], args: argparse.Namespace) -> dict[str, Any]:
    """One measured load of one server."""
    cpu_before, database_before = tree_cpu_seconds(pid), database_cpu_seconds()
    results, elapsed = asyncio.run(load(url, requests, args.concurrency, args.duration))
    cpu = tree_cpu_seconds(pid) - cpu_before
    database = database_cpu_seconds() - database_before
    latency = percentiles([seconds for _, seconds, _ in results])
    return {
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "throughput_rps": len(results) / elapsed,
        "cpu_ms_per_request": cpu * 1000 / len(results),
        "database_cpu_ms_per_request": database * 1000 / len(results),
        "requests": len(results),
        "errors": sum(1 for _, _, status in results if status != 200),
        "seconds": [seconds for _, seconds, _ in results],
    }


def _summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Pooled percentiles per value and the paired differences B − A."""
    summary: dict[str, Any] = {}
    for side in ("a", "b"):
        pooled = [s for r in rounds for s in r[side]["seconds"]]
        summary[side] = {
            **percentiles(pooled),
            "errors": sum(r[side]["errors"] for r in rounds),
            **{  # the rest of FIGURES: means over the rounds
                figure: float(np.mean([r[side][figure] for r in rounds]))
                for figure in FIGURES
                if figure not in ("p50_ms", "p99_ms")
            },
        }
    summary["b_minus_a"] = {}
    for figure in FIGURES:
        differences = np.array([r["b"][figure] - r["a"][figure] for r in rounds])
        interval = mean_interval(differences)
        summary["b_minus_a"][figure] = {
            "mean": interval.value,
            "low": interval.low,
            "high": interval.high,
            "median": float(np.median(differences)),
        }
    return summary


def _print(summary: dict[str, Any], labels: tuple[str, str]) -> None:
    table = Table(title=f"A = {labels[0]}, B = {labels[1]} (means over rounds; B − A paired)")
    for column in ("figure", "A", "B", "B − A mean [95% CI]", "median B − A"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for figure in FIGURES:
        change = summary["b_minus_a"][figure]
        pooled = figure in ("p50_ms", "p99_ms")
        table.add_row(
            figure + (" (pooled)" if pooled else ""),
            f"{summary['a'][figure]:.2f}",
            f"{summary['b'][figure]:.2f}",
            f"{change['mean']:+.2f} [{change['low']:+.2f}, {change['high']:+.2f}]",
            f"{change['median']:+.2f}",
        )
    console.print(table)
    console.print(f"errors: A {summary['a']['errors']}, B {summary['b']['errors']}")


def main() -> None:
    """Start both servers, run the interleaved rounds, print and save the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument(
        "--setting", required=True, help="NAME=A,B, e.g. OTAKU_IMPRESSIONS=false,true"
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--duration", type=float, default=20.0, help="Seconds per server per round."
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765, help="A's port; B's is the next.")
    parser.add_argument("--precompute", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    name, _, values = args.setting.partition("=")
    value_a, _, value_b = values.partition(",")
    if not name or not value_a or not value_b:
        raise SystemExit(f"--setting wants NAME=A,B, got {args.setting!r}")
    if args.precompute:
        precompute(args.bundle)
    requests = workload(args.bundle, 20000, seed=42)
    rounds: list[dict[str, dict[str, Any]]] = []
    with (
        serving(args.port, args.workers, args.bundle, {name: value_a}) as (url_a, pid_a),
        serving(args.port + 1, args.workers, args.bundle, {name: value_b}) as (url_b, pid_b),
    ):
        for url in (url_a, url_b):  # warm-up, unmeasured
            asyncio.run(load(url, requests[-300:], args.concurrency, 5.0))
        for number in range(args.rounds):
            order = [("a", url_a, pid_a), ("b", url_b, pid_b)]
            measured = {
                side: _round(url, pid, requests, args)
                for side, url, pid in (order if number % 2 == 0 else order[::-1])
            }
            rounds.append(measured)
            console.print(
                f"round {number + 1}/{args.rounds}: "
                + ", ".join(
                    f"{side.upper()} {measured[side]['throughput_rps']:.0f} req/s "
                    f"p99 {measured[side]['p99_ms']:.1f} ms"
                    for side in ("a", "b")
                )
            )
    summary = _summary(rounds)
    _print(summary, (f"{name}={value_a}", f"{name}={value_b}"))
    for measured in rounds:
        for side in ("a", "b"):
            del measured[side]["seconds"]
    write_json(
        args.out,
        {
            "setting": name,
            "a": value_a,
            "b": value_b,
            "arguments": vars(args) | {"bundle": str(args.bundle), "out": str(args.out)},
            "summary": summary,
            "rounds": rounds,
        },
    )


if __name__ == "__main__":
    main()
