"""HTTP latency and throughput of a mixed workload against the running server.

    python benchmarks/http_load.py --bundle .otaku/bundles/<version> --duration 30 --concurrency 16

Starts ``otaku serve`` on that bundle (or targets ``--url``), waits until it is ready, then
keeps ``--concurrency`` requests in flight for ``--duration`` seconds. The mix: known users
(default strategy) 50%, new users with genres 15%, new users with ratings 10%, similar anime
15%, search 5%, anime details 5%.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import console, load_bundle, percentiles, print_latency_table, serving, write_json

from otaku.service.forked import WRITER_NAME

Request = tuple[str, str, str, dict[str, Any] | None]
MIX = {"known": 50, "genres": 15, "ratings": 10, "similar": 15, "search": 5, "detail": 5}


def workload(bundle_path: Path | None, size: int, seed: int) -> list[Request]:
    bundle, _ = load_bundle(bundle_path)
    parts = bundle.models.components
    rng = random.Random(seed)
    users = [int(u) for u in parts.state.users.external_ids]
    order = np.argsort(-parts.state.popularity)[:1000]
    anime = [int(a) for a in parts.state.items.external_ids[order]]
    names = [str(parts.catalog["name"].iloc[i]) for i in order]
    genres = list(parts.genres)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=size)
    requests: list[Request] = []
    for kind in kinds:
        if kind == "known":
            requests.append((kind, "GET", f"/v1/users/{rng.choice(users)}/recommendations", None))
        elif kind == "genres":
            chosen = rng.sample(genres, rng.randint(1, 3))
            body = {"preferences": {genre: round(rng.uniform(0.3, 1), 2) for genre in chosen}}
            requests.append((kind, "POST", "/v1/recommendations", body))
        elif kind == "ratings":
            rated = [{"anime_id": a, "rating": rng.randint(5, 10)} for a in rng.sample(anime, 5)]
            requests.append((kind, "POST", "/v1/recommendations", {"ratings": rated}))
        elif kind == "similar":
            requests.append((kind, "GET", f"/v1/anime/{rng.choice(anime)}/similar", None))
        elif kind == "search":
            query = quote(rng.choice(names)[:5])
            requests.append((kind, "GET", f"/v1/anime/search?q={query}", None))
        else:
            requests.append((kind, "GET", f"/v1/anime/{rng.choice(anime)}", None))
    return requests


def _process_tree(pid: int) -> list[int]:
    """A process and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children[int(fields[1])].append(int(entry.name))
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(children.get(current, []))
    return tree


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, MB."""
    total = 0.0
    for member in _process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024.0
        except OSError:
            continue
    return total


def _memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS (shared pages divided among their users) and USS (pages only this process
    has: what it adds) of one process, MB."""
    rollup = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    )

    def kb(*names: str) -> float:
        return sum(int(rollup[name].split()[0]) for name in names) / 1024

    return {
        "rss": kb("Rss"),
        "pss": kb("Pss"),
        "uss": kb("Private_Clean", "Private_Dirty"),
    }


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _server_memory(pid: int) -> dict[str, Any]:
    """The server's memory: the process that loaded the model, each forked worker and the
    impression writer."""
    members = _process_tree(pid)
    processes = {member: _memory_mb(member) for member in members}
    names = {member: _name(member) for member in members}
    workers = [processes[m] for m in members if m != pid and names[m] != WRITER_NAME]
    writers = [processes[m] for m in members if names[m] == WRITER_NAME]
    return {
        "parent": processes[pid],
        "workers": workers,
        "impression_writer": writers[0] if writers else None,
        "total_pss_mb": sum(p["pss"] for p in processes.values()),
        "uss_mb_per_worker": max((w["uss"] for w in workers), default=None),
    }


def precompute(bundle: Path | None) -> None:
    """Store every known user's ranking in the server's database before it starts."""
    command = [sys.executable, "-m", "otaku.cli", "precompute", "--processes", "2"]
    env = dict(os.environ)
    if bundle is not None:
        env["OTAKU_BUNDLE_PATH"] = str(bundle)
    subprocess.run(command, env=env, check=True)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by a process and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in _process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _encode(request: Request, host: str) -> bytes:
    """One HTTP/1.1 keep-alive request, encoded once before the run."""
    _, method, path, body = request
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + payload


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    """Send one request and read its whole response; returns the status code."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def load(
    url: str, requests: list[Request], concurrency: int, duration: float
) -> tuple[list[tuple[str, float, int]], float]:
    """Keep ``concurrency`` connections busy for ``duration`` seconds (a lean raw-socket
    HTTP/1.1 client, so the load generator takes little of the CPU the server needs)."""
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    encoded = [(request[0], _encode(request, f"{host}:{port}")) for request in requests]
    results: list[tuple[str, float, int]] = []
    position = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal position
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                kind, raw = encoded[position % len(encoded)]
                position += 1
                started = time.perf_counter()
                try:
                    status = await _exchange(reader, writer, raw)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status = 0
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                results.append((kind, time.perf_counter() - started, status))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - started


def main() -> None:
    """Start the server (unless --url), run the load, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--url", default=None, help="Target a running server instead.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--precompute",
        action="store_true",
        help="Run `otaku precompute` into the server's database first (OTAKU_DATABASE_URL).",
    )
    args = parser.parse_args()
    if args.precompute:
        precompute(args.bundle)
    requests = workload(args.bundle, 20000, seed=42)

    def run(url: str) -> tuple[list[tuple[str, float, int]], float]:
        asyncio.run(load(url, requests[-300:], args.concurrency, 5.0))  # warm-up, unmeasured
        return asyncio.run(load(url, requests, args.concurrency, args.duration))

    rss = server_cpu = memory = None
    if args.url:
        results, elapsed = run(args.url)
    else:
        with serving(args.port, args.workers, args.bundle) as (url, pid):
            asyncio.run(load(url, requests[-300:], args.concurrency, 5.0))  # warm-up, unmeasured
            cpu_before = tree_cpu_seconds(pid)
            results, elapsed = asyncio.run(load(url, requests, args.concurrency, args.duration))
            server_cpu = tree_cpu_seconds(pid) - cpu_before
            rss = _tree_rss_mb(pid)
            memory = _server_memory(pid)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, seconds, _ in results:
        by_kind[kind].append(seconds)
    rows = {"all": percentiles([seconds for _, seconds, _ in results])}
    rows.update({kind: percentiles(values) for kind, values in sorted(by_kind.items())})
    errors = sum(1 for _, _, status in results if status != 200)
    title = f"HTTP mixed workload, {args.concurrency} in flight, {args.workers} worker(s)" + (
        ", known users precomputed" if args.precompute else ""
    )
    print_latency_table(title, rows)
    facts = {
        "requests": len(results),
        "seconds": elapsed,
        "throughput_rps": len(results) / elapsed,
        "errors": errors,
        "server_rss_mb": rss,
        "server_cpu_ms_per_request": None
        if server_cpu is None
        else server_cpu * 1000 / len(results),
        "concurrency": args.concurrency,
        "workers": args.workers,
        "precomputed": args.precompute,
    }
    for key, value in facts.items():
        console.print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    if memory is not None:
        console.print(
            f"memory: parent RSS {memory['parent']['rss']:.0f} MB; per worker USS (what it "
            f"adds) {memory['uss_mb_per_worker']}; total PSS {memory['total_pss_mb']:.0f} MB"
        )
    write_json(args.out, {"latency": rows, **facts, "server_memory": memory})


if __name__ == "__main__":
    main()
