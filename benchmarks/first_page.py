"""A known user's first page over HTTP, one request at a time: read from the precomputed
rankings, or computed (nothing warmed in either case).

    otaku precompute                      # stored rankings in OTAKU_DATABASE_URL
    python benchmarks/first_page.py --workers 1 --label precomputed
    python benchmarks/first_page.py --workers 1 --label computed --clear

Starts ``otaku serve`` on the champion with ``OTAKU_WARM_USERS=0`` and asks for the first page
of distinct known users, sequentially; ``--clear`` deletes the stored rankings first. The
client is ``http.client`` on one keep-alive connection by default (``--client httpx`` for
the httpx client, whose own time per request is a good part of a 2 ms answer).
"""

import argparse
import http.client
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from sqlalchemy import delete

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import console, load_bundle, percentiles, serving, write_json

from otaku.config import Settings
from otaku.storage.database import Database
from otaku.storage.models import PrecomputedRanking


def main() -> None:
    """Time the first page of ``--users`` distinct known users."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--port", type=int, default=8777)
    parser.add_argument("--label", default="precomputed")
    parser.add_argument("--clear", action="store_true", help="Delete stored rankings first.")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--client",
        choices=("stdlib", "httpx"),
        default="stdlib",
        help="stdlib: http.client on one keep-alive connection (little client-side time); "
        "httpx: the httpx client (about 0.3-0.9 ms of its own per request here)",
    )
    args = parser.parse_args()
    database = Database.from_settings(Settings())
    if args.clear:
        with database.transaction() as session:
            session.execute(delete(PrecomputedRanking))
    with database.reading() as session:
        stored = session.query(PrecomputedRanking).count()
    bundle, _ = load_bundle(None)
    users = bundle.models.components.state.users.external_ids
    sample = np.random.default_rng(5).choice(users, size=min(args.users, len(users)), replace=False)
    quiet = {"OTAKU_WARM_USERS": "0", "OTAKU_PROGRESS": "0"}  # nothing warmed but the code
    with serving(args.port, args.workers, env=quiet) as (url, _):
        ask = _stdlib_client(url) if args.client == "stdlib" else _httpx_client(url)
        for _ in range(50):
            ask("/v1/anime/1")  # the connection and the code paths warmed
        seconds = []
        for user in sample:
            started = time.perf_counter()
            status, body = ask(f"/v1/users/{int(user)}/recommendations")
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise SystemExit(f"user {user}: {status} {body!r}")
    figures = percentiles(seconds)
    console.print(
        f"{args.label} ({stored:,} stored rankings, {args.workers} worker(s)): first page of "
        f"{len(seconds)} users p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
    )
    write_json(args.out, {"label": args.label, "client": args.client, "stored": stored, **figures})


def _stdlib_client(url: str) -> Callable[[str], tuple[int, bytes]]:
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)

    def ask(path: str) -> tuple[int, bytes]:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()

    return ask


def _httpx_client(url: str) -> Callable[[str], tuple[int, bytes]]:
    client = httpx.Client(base_url=url, timeout=30)

    def ask(path: str) -> tuple[int, bytes]:
        response = client.get(path)
        return response.status_code, response.content

    return ask


if __name__ == "__main__":
    main()
