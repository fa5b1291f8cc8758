"""Replay a hostile client's reproductions against a running server and count what happens.

    python benchmarks/hostile.py --url http://127.0.0.1:8000 --key KEY

Each line is one reproduction from the hardening issue: how many requests were sent, how many
got a 5xx or lost their connection, and the statuses seen. Run it against two builds to
compare them (the server needs a model and a database with the dataset loaded; it creates
users and ratings).
"""

import argparse
import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309"]
BODIES = [
    ("/v1/recommendations", '{"preferences": {"Action": %s}}'),
    ("/v1/recommendations", '{"ratings": [{"anime_id": 1, "rating": %s}]}'),
    ("/v1/recommendations", '{"filters": {"min_score": %s}}'),
    ("/recommend/", '{"user_input": 1, "user_preferences": {"Action": %s}}'),
]


@dataclass
class Outcome:
    """What one reproduction got."""

    name: str
    statuses: Counter[str]

    @property
    def failures(self) -> int:
        """Answers that were a 5xx or no answer at all."""
        return sum(n for status, n in self.statuses.items() if status[0] not in "1234")

    def line(self) -> str:
        """One line of the report."""
        total = sum(self.statuses.values())
        seen = ", ".join(f"{status}×{n}" for status, n in sorted(self.statuses.items()))
        return f"| {self.name} | {total} | {self.failures} | {seen} |"


def _send(client: httpx.Client, method: str, path: str, **options: Any) -> str:
    """The status of one request, or the name of the error when there was no answer."""
    try:
        return str(client.request(method, path, **options).status_code)
    except httpx.HTTPError as error:
        return type(error).__name__


def _at_once(count: int, call: Callable[[int], str]) -> list[str]:
    """``count`` calls released together from ``count`` threads."""
    barrier = threading.Barrier(count)

    def run(index: int) -> str:
        barrier.wait()
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _non_finite(client: httpx.Client) -> list[str]:
    headers = {"Content-Type": "application/json"}
    return [
        _send(client, "POST", path, content=template % number, headers=headers)
        for path, template in BODIES
        for number in NON_FINITE
    ]


def _non_ascii_key(client: httpx.Client, anime_id: int) -> list[str]:
    headers = {b"X-API-Key": b"\xff\xfe"}
    routes: list[tuple[str, str, Any]] = [
        ("POST", "/v1/users", {}),
        ("PUT", f"/v1/users/1/ratings/{anime_id}", {"rating": 5}),
        ("DELETE", f"/v1/users/1/ratings/{anime_id}", None),
        ("POST", "/admin/reload", None),
    ]
    return [_send(client, m, p, json=body, headers=headers) for m, p, body in routes]


def _many_anime(
    client: httpx.Client, auth: dict[str, str], user: int, anime: list[int]
) -> list[str]:
    statuses: list[str] = []
    for round_ in range(10):
        batch = anime[round_ * 4 : round_ * 4 + 8]

        def rate(i: int, batch: list[int] = batch) -> str:
            path = f"/v1/users/{user}/ratings/{batch[i % len(batch)]}"
            return _send(client, "PUT", path, json={"rating": 7}, headers=auth)

        statuses += _at_once(8, rate)
    return statuses


def _put_and_delete(client: httpx.Client, auth: dict[str, str], path: str) -> list[str]:
    def either(i: int) -> str:
        if i % 2:
            return _send(client, "PUT", path, json={"rating": 7}, headers=auth)
        return _send(client, "DELETE", path, headers=auth)

    return [status for _ in range(10) for status in _at_once(8, either)]


def _huge_ids(client: httpx.Client, auth: dict[str, str]) -> list[str]:
    statuses = [_send(client, "POST", "/v1/users", json={"user_id": 2**62}, headers=auth)]
    after = client.post("/v1/users", json={}, headers=auth)
    statuses.append(str(after.status_code))
    if after.status_code == 201:
        new_id = after.json()["user_id"]
        statuses.append(_send(client, "GET", f"/v1/users/{new_id}/recommendations"))
    return statuses


def run_all(url: str, key: str) -> list[Outcome]:
    """Every reproduction, in order."""
    auth = {"X-API-Key": key}
    client = httpx.Client(base_url=url, timeout=120)
    found = client.get("/v1/anime/search", params={"q": "a", "limit": 50}).json()["results"]
    anime = [result["anime"]["anime_id"] for result in found]
    created = client.post("/v1/users", json={}, headers=auth)
    if created.status_code != 201:  # e.g. an earlier run left a user at the top of the range
        created = client.post("/v1/users", json={"user_id": 900_000_001}, headers=auth)
    user = created.json()["user_id"]
    rating_path = f"/v1/users/{user}/ratings/{anime[-1]}"
    body = json.dumps({"pad": "x" * (100 * 2**20)})
    big = client.post(
        "/v1/recommendations", content=body, headers={"Content-Type": "application/json"}
    )
    options = client.options(rating_path)
    rows = [
        ("1. NaN / ±Infinity / 1e309 in JSON numbers", _non_finite(client)),
        (
            "2. /recommend/ with user_input 2^63",
            [_send(client, "POST", "/recommend/", json={"user_input": 2**63})],
        ),
        ("3. non-ASCII X-API-Key on the write routes", _non_ascii_key(client, anime[0])),
        ("4a. 8 threads rate different anime for one user", _many_anime(client, auth, user, anime)),
        ("4b. PUT and DELETE of one rating at once", _put_and_delete(client, auth, rating_path)),
        (
            "5. 40 concurrent POST /v1/users {}",
            _at_once(40, lambda _: _send(client, "POST", "/v1/users", json={}, headers=auth)),
        ),
        ("6. create 2^62, then {}, then read the new id", _huge_ids(client, auth)),
        (f"8. 100 MB body (answer: {len(big.content):,} bytes)", [str(big.status_code)]),
        (
            f"13. OPTIONS on a rating (Allow: {options.headers.get('allow', '')})",
            [str(options.status_code)],
        ),
        (
            '13. PUT {"rating": true}',
            [_send(client, "PUT", rating_path, json={"rating": True}, headers=auth)],
        ),
    ]
    client.close()
    return [Outcome(name, Counter(statuses)) for name, statuses in rows]


def main() -> None:
    """Parse the arguments, run every reproduction, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    arguments = parser.parse_args()
    print("| reproduction | requests | 5xx or dropped | statuses |")
    print("|---|---|---|---|")
    for outcome in run_all(arguments.url, arguments.key):
        print(outcome.line())


if __name__ == "__main__":
    main()
