"""What every question answers with: a :class:`Page` of :class:`Recommended` anime, the
page bounds, and the stopwatch that times each stage."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from otaku.pipeline.catalog import AnimeInfo
from otaku.pipeline.filters import InvalidInputError

MAX_K = 100
DEFAULT_K = 10  # items on a page when the caller does not say
MAX_OFFSET = 900


@dataclass(frozen=True)
class Recommended:
    """One recommended anime."""

    anime: AnimeInfo
    score: float
    predicted_rating: float
    explanation: str


@dataclass(frozen=True)
class Page:
    """A page of recommendations with the time each stage took (seconds)."""

    strategy: str
    offset: int
    items: list[Recommended]
    timings: dict[str, float]


class Stopwatch:
    """Time spent in each named stage of one request (seconds)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as ``name`` (added up when a stage repeats)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


def check_page(k: int, offset: int) -> None:
    """Raise :class:`InvalidInputError` for a page outside 1 <= k <= 100, 0 <= offset <= 900."""
    if not 1 <= k <= MAX_K:
        raise InvalidInputError("k", f"must be between 1 and {MAX_K}, got {k}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInputError("offset", f"must be between 0 and {MAX_OFFSET}, got {offset}")
