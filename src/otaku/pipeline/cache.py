"""A small thread-safe LRU cache (the engine's rankings and predictions)."""

import threading
from collections import OrderedDict
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        """The cached value, or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store a value, evicting the least recently used beyond the size."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is cached (not counted as a hit or a miss; not refreshed)."""
        with self._lock:
            return key in self._entries

    def newest(self, limit: int) -> list[K]:
        """Up to ``limit`` keys, the most recently used first."""
        with self._lock:
            return list(islice(reversed(self._entries), limit))

    def clear(self) -> None:
        """Forget every entry and reset the hit and miss counts."""
        with self._lock:
            self._entries.clear()
            self.hits = 0
            self.misses = 0
