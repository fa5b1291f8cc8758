"""Impressions sent down a pipe to a writer process (what forked server workers do), on a
real database (SQLite and PostgreSQL) with a real forked writer: written exactly once from
threads and processes, flushed across processes, dropped (counted) without blocking when
the pipe is full, and written on SIGTERM."""

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from otaku.config import Settings
from otaku.experiments.impressions import ImpressionLog, Shown
from otaku.experiments.writer_process import ImpressionPipe
from otaku.service.forked import fork_impression_writer
from otaku.storage.database import Database
from otaku.storage.models import Impression
from tests.integration.impression_pages import record_from_threads, shown_page

pytestmark = pytest.mark.integration


@pytest.fixture
def pipe_and_writer(database: Database, tmp_path: Path) -> Iterator[tuple[ImpressionPipe, int]]:
    pipe = ImpressionPipe()
    url = database.engine.url.render_as_string(hide_password=False)
    pid = fork_impression_writer(Settings(home=tmp_path, database_url=url), pipe)
    try:
        yield pipe, pid
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):  # the test stopped it already
            pass
        os.close(pipe.read_fd)
        os.close(pipe.write_fd)


_shown = shown_page


def _stored(database: Database) -> list[Impression]:
    with database.reading() as session:
        return list(session.query(Impression).all())


def _record_in_a_child(log: ImpressionLog, count: int) -> None:
    """Another worker: records, flushes and exits 0 only if the flush was acknowledged."""
    for i in range(count):
        log.record(_shown(10_000 + i, [i]))
    os._exit(0 if log.flush(60) else 1)


def test_impressions_from_threads_and_processes_are_written_exactly_once(
    database: Database, pipe_and_writer: tuple[ImpressionPipe, int]
) -> None:
    pipe, _ = pipe_and_writer
    log = ImpressionLog(database, pipe=pipe)
    child = multiprocessing.get_context("fork").Process(target=_record_in_a_child, args=(log, 300))
    child.start()
    recorded = record_from_threads(log)
    assert log.flush(60)
    child.join(60)
    assert child.exitcode == 0  # its flush was acknowledged too
    stored = _stored(database)
    assert len(stored) == 2300 == len({i.impression_id for i in stored})
    assert set(recorded) <= {i.impression_id for i in stored}
    counts = log.counts
    assert (counts.queued, counts.dropped, counts.written, counts.failed) == (2000, 0, 2300, 0)


def test_a_page_keeps_every_field_through_the_pipe(
    database: Database, pipe_and_writer: tuple[ImpressionPipe, int]
) -> None:
    pipe, _ = pipe_and_writer
    log = ImpressionLog(database, pipe=pipe)
    awkward = "tab\there\nnew line \\N back\\slash é"
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert log.record(_shown(7, [3, 2, 1], request_id=awkward, shown_at=when))
    assert log.record(Shown(None, None, None, "seed", "v2", 11, [], 2.5))
    assert log.flush(30)
    stored = {i.user_id: i for i in _stored(database)}
    first, second = stored[7], stored[None]
    assert (first.request_id, first.anime_ids, first.experiment) == (awkward, [3, 2, 1], "exp")
    assert first.shown_at.replace(tzinfo=UTC) == when
    assert (second.strategy, second.model_version, second.first_rank) == ("seed", "v2", 11)
    assert (second.arm, second.anime_ids, second.latency_ms) == (None, [], 2.5)


def test_a_full_pipe_drops_and_counts_without_blocking(
    database: Database, pipe_and_writer: tuple[ImpressionPipe, int]
) -> None:
    pipe, writer = pipe_and_writer
    log = ImpressionLog(database, pipe=pipe)
    os.kill(writer, signal.SIGSTOP)  # the writer reads nothing: the pipe fills
    page = list(range(100_000, 100_100))  # ~600 bytes an impression: 1 MiB is ~1,700 of them
    started = time.perf_counter()
    outcomes = [log.record(_shown(1, page)) for _ in range(5000)]
    elapsed = time.perf_counter() - started
    sent = outcomes.count(True)
    assert 0 < sent < 5000 and outcomes[:sent] == [True] * sent  # the rest found it full
    assert log.counts.dropped == 5000 - sent and elapsed < 5.0  # never waited for the writer
    os.kill(writer, signal.SIGCONT)
    assert log.flush(60)
    assert len(_stored(database)) == sent == log.counts.written


def test_sigterm_writes_what_was_sent_before_it(
    database: Database, pipe_and_writer: tuple[ImpressionPipe, int]
) -> None:
    pipe, writer = pipe_and_writer
    log = ImpressionLog(database, pipe=pipe)
    assert all(log.record(_shown(i, [i])) for i in range(500))
    os.kill(writer, signal.SIGTERM)  # no flush: the writer drains the pipe as it stops
    _, status = os.waitpid(writer, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(_stored(database)) == 500
