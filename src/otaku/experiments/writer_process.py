"""Impressions of forked server workers, written by one process of their own.

A writer thread in each worker took CPU from that worker's requests through the GIL (its
wake-ups and hand-offs cost +7.9 ms at p99 with the server saturated). So ``otaku serve
--workers N`` makes a pipe before forking: a worker writes each impression to it as one
message of at most PIPE_BUF bytes, which the kernel writes whole or not at all, and a full
pipe drops the impression (counted) without waiting. A writer process forked beside the
workers reads the pipe, gathers batches and writes them with :class:`BatchWriter`.

Its counts (written, failed, its own drops) and flush acknowledgements live in a small
shared array. A flush sends a marker with a new token under a lock shared by all processes,
so markers enter the pipe in token order: when the writer has acknowledged a token,
everything sent before that marker is written.
"""

import logging
import marshal
import multiprocessing
import os
import select
import signal
import struct
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from otaku.experiments.impressions import BatchWriter, Shown
from otaku.storage.database import Database

log = logging.getLogger(__name__)

HEADER = struct.Struct("<BI")  # kind, then the payload's length (or a flush's token)
IMPRESSION, FLUSH = 1, 2
PIPE_BYTES = 1 << 20  # ~2,000 impressions in flight; Linux lets anyone ask for 1 MiB
F_SETPIPE_SZ = 1031  # linux/fcntl.h
WRITTEN, FAILED, DROPPED, FLUSHED, LAST_TOKEN = range(5)  # the shared array's slots
READ_BYTES = 1 << 20


def _fields(shown: Shown) -> tuple[Any, ...]:
    shown_at = shown.shown_at.timestamp() if shown.shown_at is not None else None
    return (
        shown.user_id,
        shown.experiment,
        shown.arm,
        shown.strategy,
        shown.model_version,
        shown.first_rank,
        shown.anime_ids,
        shown.latency_ms,
        shown.request_id,
        shown_at,
        shown.impression_id,
        shown.recorded_at,
    )


def _shown(fields: tuple[Any, ...]) -> Shown:
    user_id, experiment, arm, strategy, model_version, first_rank, anime_ids = fields[:7]
    latency_ms, request_id, shown_at, impression_id, recorded_at = fields[7:]
    return Shown(
        user_id,
        experiment,
        arm,
        strategy,
        model_version,
        first_rank,
        anime_ids,
        latency_ms,
        request_id=request_id,
        shown_at=datetime.fromtimestamp(shown_at, UTC) if shown_at is not None else None,
        impression_id=impression_id,
        recorded_at=recorded_at,
    )


class ImpressionPipe:
    """The pipe from the workers to the writer process, its shared counts and flush lock;
    made by the supervisor before it forks anyone."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(self.write_fd, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # not Linux, or a lower limit: the default pipe (64 KiB) still works
            log.info("impression pipe kept at its default size")
        os.set_blocking(self.write_fd, False)
        context = multiprocessing.get_context("fork")
        self.shared: Any = context.RawArray("q", 5)
        self.flush_lock: Any = context.Lock()

    def send(self, shown: Shown) -> bool:
        """Write one impression to the pipe; False when the pipe is full (or the impression
        too big to be written whole). Never blocks."""
        payload = marshal.dumps(_fields(shown))
        if HEADER.size + len(payload) > select.PIPE_BUF:
            log.warning("impression of %d bytes not sent: over PIPE_BUF", len(payload))
            return False
        try:
            os.write(self.write_fd, HEADER.pack(IMPRESSION, len(payload)) + payload)
        except BlockingIOError:
            return False
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the writer has written everything this process sent before the call;
        False on timeout."""
        deadline = time.monotonic() + timeout
        if not self.flush_lock.acquire(timeout=timeout):
            return False
        try:
            token = self.shared[LAST_TOKEN] + 1
            self.shared[LAST_TOKEN] = token
            if not _write_before(self.write_fd, HEADER.pack(FLUSH, token), deadline):
                return False
        finally:
            self.flush_lock.release()
        while self.shared[FLUSHED] < token:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def writer_counts(self) -> tuple[int, int, int]:
        """The writer's impressions written, failed, and dropped (its buffer was full)."""
        return self.shared[WRITTEN], self.shared[FAILED], self.shared[DROPPED]

    def close_reading_end(self) -> None:
        """A worker never reads: it closes its copy of the pipe's reading end."""
        os.close(self.read_fd)


def _write_before(fd: int, message: bytes, deadline: float) -> bool:
    while True:
        try:
            os.write(fd, message)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)


class PipeReader:
    """The writer process's side: reads the pipe, gathers impressions and writes them."""

    def __init__(
        self,
        pipe: ImpressionPipe,
        write: Callable[[list[Shown]], None],
        capacity: int,
        batch_size: int,
        gather_seconds: float,
        stop_asked: list[bool],
    ) -> None:
        self.pipe = pipe
        self.stop_asked = stop_asked  # [True]: write what is left and end
        self.write = write
        self.capacity = capacity
        self.batch_size = batch_size
        self.gather_seconds = gather_seconds
        self.pending: list[Shown] = []
        self.first_at = 0.0
        self._unread = b""
        os.set_blocking(pipe.read_fd, False)

    def run(self) -> None:
        """Read, gather and write until asked to stop, then write what is left."""
        while True:
            got = self._read(self._wait_seconds())
            token = self._take_messages()
            due = time.monotonic() - self.first_at >= self.gather_seconds
            if self.pending and (token or self.stopping or due):
                self._write_pending()
            if token:
                self.pipe.shared[FLUSHED] = token
            if self.stopping and not got:
                return

    @property
    def stopping(self) -> bool:
        """Asked to stop, or every writing end of the pipe is closed."""
        return self.stop_asked[0]

    def _wait_seconds(self) -> float:
        if self.stopping:
            return 0.0
        if not self.pending:
            return self.gather_seconds
        return max(0.0, self.first_at + self.gather_seconds - time.monotonic())

    def _read(self, wait: float) -> bool:
        readable, _, _ = select.select([self.pipe.read_fd], [], [], wait)
        if not readable:
            return False
        chunks = [self._unread]
        while True:
            try:
                chunk = os.read(self.pipe.read_fd, READ_BYTES)
            except BlockingIOError:
                break
            if not chunk:  # every writing end is closed
                self.stop_asked[0] = True
                break
            chunks.append(chunk)
        self._unread = b"".join(chunks)
        return len(chunks) > 1

    def _take_messages(self) -> int:
        """Parse the whole messages read; returns the last flush token among them (0: none)."""
        data, at, token = self._unread, 0, 0
        while len(data) - at >= HEADER.size:
            kind, size = HEADER.unpack_from(data, at)
            if kind == FLUSH:
                token, at = size, at + HEADER.size
                continue
            if len(data) - at - HEADER.size < size:
                break  # the rest of it comes with the next read
            start = at + HEADER.size
            self._keep(_shown(marshal.loads(data[start : start + size])))
            at = start + size
        self._unread = data[at:]
        return token

    def _keep(self, shown: Shown) -> None:
        if len(self.pending) >= self.capacity:
            self.pipe.shared[DROPPED] += 1
            return
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending.append(shown)

    def _write_pending(self) -> None:
        for start in range(0, len(self.pending), self.batch_size):
            self.write(self.pending[start : start + self.batch_size])
        self.pending = []


def run_writer_process(
    pipe: ImpressionPipe,
    database_url: str,
    capacity: int,
    batch_size: int = 1000,
    gather_seconds: float = 0.25,
) -> None:
    """The writer process's body: write impressions from ``pipe`` until SIGTERM (then write
    what was sent before it)."""
    from otaku.storage.database import create_db_engine

    stop_asked = [False]  # a SIGTERM may come before the reader exists

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stop_asked[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C reaches the supervisor
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # the forker held it

    def count(outcome: str, n: int) -> None:
        slot = {"written": WRITTEN, "failed": FAILED}[outcome]
        pipe.shared[slot] += n

    writer = BatchWriter(Database(create_db_engine(database_url)), count)
    reader = PipeReader(pipe, writer.write, capacity, batch_size, gather_seconds, stop_asked)
    try:
        reader.run()
    finally:
        writer.close()
