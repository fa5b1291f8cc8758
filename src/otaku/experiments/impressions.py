"""Impressions are written off the request path: a request puts what it showed on a bounded
queue and returns; one writer thread per process inserts them in batches. Forked server
workers instead send them down a pipe to one writer process
(:mod:`otaku.experiments.writer_process`), so no writer runs beside their requests.

A full queue (or pipe) drops the impression (counted), never blocks the request. Every
impression has its own id, and a batch is inserted with "on conflict do nothing", so a batch
retried after an uncertain commit is still written exactly once.
"""

import itertools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from otaku.experiments.copy_writer import CopyConnection, CopyError
from otaku.storage.database import Database
from otaku.storage.models import Impression
from otaku.storage.repository import Repository

if TYPE_CHECKING:
    from otaku.experiments.writer_process import ImpressionPipe

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 3


@dataclass(slots=True)
class Shown:
    """One page as shown to someone.

    Built on the request path, so it stays cheap: the time is a float until the writer turns
    it into a datetime, and the id is a per-process prefix plus a counter (a uuid4 per
    impression cost more than the rest of the record, and its random keys scatter the
    primary key's index writes)."""

    user_id: int | None
    experiment: str | None
    arm: str | None
    strategy: str
    model_version: str
    first_rank: int
    anime_ids: list[int]
    latency_ms: float
    request_id: str | None = None
    shown_at: datetime | None = None  # None: when it was recorded
    impression_id: str = ""  # "": given by ImpressionLog.record
    recorded_at: float = field(default_factory=time.time)

    def row(self) -> dict[str, Any]:
        """The impressions table's row."""
        return {
            "impression_id": self.impression_id,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "experiment": self.experiment,
            "arm": self.arm,
            "strategy": self.strategy,
            "model_version": self.model_version,
            "first_rank": self.first_rank,
            "anime_ids": self.anime_ids,
            "latency_ms": self.latency_ms,
            "shown_at": self.shown_at or datetime.fromtimestamp(self.recorded_at, UTC),
        }


OUTCOMES = ("queued", "written", "dropped", "failed")  # the fields of ImpressionCounts


@dataclass
class ImpressionCounts:
    """What happened to the impressions recorded in this process (with a writer process:
    queued and dropped here, written, failed and the writer's own drops server-wide)."""

    queued: int = 0
    written: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # the database refused them after every attempt


def insert_impressions(database: Database, rows: list[dict[str, Any]]) -> None:
    """Insert impression rows in one transaction (COPY on PostgreSQL: a fraction of an
    INSERT's CPU per row); when some are there already (a batch retried after an uncertain
    commit), insert again skipping those."""
    try:
        with database.transaction() as session:
            Repository(session).bulk_insert(Impression, rows)
    except IntegrityError:
        dialect = postgresql if database.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(Impression).on_conflict_do_nothing(
            index_elements=[Impression.impression_id]
        )
        with database.transaction() as session:
            session.execute(statement, rows)


class BatchWriter:
    """Writes batches of impressions: one COPY over a connection of its own on PostgreSQL,
    the pooled INSERT path (retried) elsewhere or when the COPY fails."""

    def __init__(self, database: Database, on_outcome: Callable[[str, int], None]) -> None:
        self.database = database
        self._on_outcome = on_outcome
        postgres = database.engine.dialect.name == "postgresql"
        self._copy = CopyConnection(database.engine.url) if postgres else None

    def write(self, batch: list[Shown]) -> None:
        """Write ``batch``; counts it as written, or as failed after every attempt."""
        rows = [item.row() for item in batch]
        if self._copy is not None:
            try:
                self._copy.write(rows)
                self._on_outcome("written", len(rows))
                return
            except CopyError as error:  # the pooled path below retries
                log.warning("impressions not copied, retrying through the pool: %s", error)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                insert_impressions(self.database, rows)
                self._on_outcome("written", len(rows))
                return
            except SQLAlchemyError as error:
                log.warning("impressions not written (attempt %d): %s", attempt, error)
                time.sleep(0.1 * attempt)
        self._on_outcome("failed", len(rows))

    def close(self) -> None:
        """Close the COPY connection."""
        if self._copy is not None:
            self._copy.close()


class ImpressionLog:
    """A bounded queue of impressions and the thread that writes them in batches; or, given
    a pipe to a writer process, a non-blocking write to that pipe.

    The thread starts with the first impression in each process (a server forks its workers
    after building this object, and threads do not survive a fork)."""

    def __init__(
        self,
        database: Database | None,
        capacity: int = 10_000,
        batch_size: int = 1000,
        gather_seconds: float = 0.25,
        pipe: "ImpressionPipe | None" = None,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError(f"need capacity, batch_size >= 1, got {capacity}, {batch_size}")
        self.database = database
        self.capacity = capacity
        self.batch_size = batch_size
        self.gather_seconds = gather_seconds
        self.pipe = pipe
        self._counts = ImpressionCounts()
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._pid = -1
        self._queue: queue.Queue[Shown | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._id_prefix = ""
        self._serials = itertools.count()

    @property
    def counts(self) -> ImpressionCounts:
        """What happened to the impressions so far (a snapshot)."""
        with self._count_lock:
            counts = ImpressionCounts(**vars(self._counts))
        if self.pipe is not None:
            written, failed, dropped = self.pipe.writer_counts()
            counts.written, counts.failed = written, failed
            counts.dropped += dropped
        return counts

    def _ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # first use in this process
                self._queue = queue.Queue(self.capacity)
                self._counts = ImpressionCounts()
                self._id_prefix = uuid.uuid4().hex[:16]  # a forked worker gets its own
                self._serials = itertools.count()
                if self.pipe is None:
                    self._thread = threading.Thread(
                        target=self._write_forever, name="impressions", daemon=True
                    )
                    self._thread.start()
                self._pid = os.getpid()

    def record(self, shown: Shown) -> bool:
        """Queue one impression; False (and counted as dropped) when the queue is full or
        there is no database. Never blocks."""
        if self.database is None:
            return False
        self._ensure_started()
        if not shown.impression_id:
            shown.impression_id = f"{self._id_prefix}{next(self._serials):016x}"
        if self.pipe is not None:
            sent = self.pipe.send(shown)
        else:
            try:
                self._queue.put_nowait(shown)
                sent = True
            except queue.Full:
                sent = False
        self._count("queued" if sent else "dropped", 1)
        return sent

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued impression is written (or given up); False on timeout."""
        if self._pid != os.getpid():
            return True
        if self.pipe is not None:
            return self.pipe.flush(timeout)
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the writer (a writer process is the supervisor's
        to stop: this only flushes to it)."""
        if self._pid != os.getpid():
            return
        self.flush(timeout)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        self._pid = -1

    def _count(self, outcome: str, n: int) -> None:
        with self._count_lock:
            setattr(self._counts, outcome, getattr(self._counts, outcome) + n)

    def _write_forever(self) -> None:
        assert self.database is not None
        writer = BatchWriter(self.database, self._count)
        try:
            self._write_batches(writer)
        finally:
            writer.close()

    def _write_batches(self, writer: BatchWriter) -> None:
        while True:
            first = self._queue.get()
            if first is not None:
                # let a batch gather: a transaction per impression would cost more CPU than
                # the request that made it (and every wake-up takes the GIL from requests)
                time.sleep(self.gather_seconds)
            batch = [first]
            while first is not None and len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                if item is None:
                    break
            shown = [item for item in batch if item is not None]
            if shown:
                writer.write(shown)
            for _ in batch:
                self._queue.task_done()
            if len(shown) < len(batch):
                return  # close() asked the writer to stop
