"""The database's health for callers that must not hang on it: the liveness route (its probe
times out in seconds) and Prometheus scrapes."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as Pending


class DatabaseHealth:
    """Whether the database answers. One check runs at a time (in a worker thread), a result
    younger than ``max_age`` seconds is reused, and a caller waits at most ``wait`` seconds:
    a check still running then counts as down (a database that slow serves no request
    either), so a blackholed server never holds a probe past its timeout."""

    def __init__(self, check: Callable[[], bool], max_age: float = 1.0, wait: float = 1.0):
        self._check = check
        self._max_age = max_age
        self._wait = wait
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="otaku-db-health")
        self._running: Future[bool] | None = None
        self._last: tuple[float, bool] | None = None

    def up(self) -> bool:
        """The database's state: a recent result, or a fresh check (bounded wait)."""
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < self._max_age:
                return self._last[1]
            if self._running is None or self._running.done():
                self._running = self._worker.submit(self._record)
            running = self._running
        try:
            return running.result(timeout=self._wait)
        except Pending:
            return False

    def _record(self) -> bool:
        answered = self._check()
        with self._lock:
            self._last = (time.monotonic(), answered)
        return answered
