"""Impressions for the tests: a page as shown, and many recorded at once from threads."""

import threading

from otaku.experiments.impressions import ImpressionLog, Shown


def shown_page(user_id: int, anime_ids: list[int], arm: str = "a", **extra: object) -> Shown:
    """A page of experiment "exp" shown to ``user_id``."""
    return Shown(user_id, "exp", arm, "default", "v1", 1, anime_ids, 1.0, **extra)  # type: ignore[arg-type]


def record_from_threads(log: ImpressionLog, threads: int = 8, each: int = 250) -> list[str]:
    """Record ``each`` pages from each of ``threads`` threads at once (every one must be
    accepted); returns the impression ids given."""
    recorded: list[str] = []
    lock = threading.Lock()

    def request(thread: int) -> None:
        for i in range(each):
            shown = shown_page(thread * 1000 + i, [1, 2, 3])
            assert log.record(shown)
            with lock:
                recorded.append(shown.impression_id)

    started = [threading.Thread(target=request, args=(t,)) for t in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return recorded
