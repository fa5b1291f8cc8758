"""The database check behind /healthz and otaku_database_up: a database that does not answer
makes it say "down" within its wait (a liveness probe times out in seconds), one check runs at
a time, and a recent answer is reused."""

import threading

from otaku.service.health import DatabaseHealth


class SlowDatabase:
    """A check that answers only when released (as a blackholed server never does)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.checks = 0

    def __call__(self) -> bool:
        self.checks += 1
        self.released.wait(timeout=30)
        return True


def test_a_database_that_does_not_answer_is_down_without_holding_the_caller() -> None:
    database = SlowDatabase()
    health = DatabaseHealth(database, max_age=60.0, wait=0.05)
    assert health.up() is False  # the check is still running: down, at once
    assert health.up() is False
    assert database.checks == 1  # one check at a time, however many callers
    database.released.set()
    health._worker.shutdown(wait=True)  # let the check finish and record its answer
    assert health.up() is True
    assert database.checks == 1  # a recent answer is reused


def test_a_stale_answer_is_checked_again() -> None:
    answers = iter([True, False])
    health = DatabaseHealth(lambda: next(answers), max_age=0.0, wait=5.0)
    assert health.up() is True
    assert health.up() is False
