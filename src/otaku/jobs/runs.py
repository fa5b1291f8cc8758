"""A record of every batch-job run in the database, so operators (and the service's
``otaku_job_runs`` metric) see what ran, when, and how it ended."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from otaku.storage.database import Database
from otaku.storage.models import JobRun, utc_now

RUNNING = "running"
FAILED = "failed"
DETAIL_LIMIT = 2000


@dataclass
class RunRecord:
    """The run in progress; the job sets ``outcome`` (and ``detail``) before it returns."""

    run_id: int
    outcome: str = "done"
    detail: str | None = None


@contextmanager
def recorded_run(database: Database, job: str) -> Iterator[RunRecord]:
    """Record a run of ``job``: 'running' at once, then its outcome, or 'failed' and the
    error when it raises (the error is re-raised). A killed run stays 'running'."""
    with database.transaction() as session:
        row = JobRun(job=job, outcome=RUNNING)
        session.add(row)
        session.flush()
        record = RunRecord(row.run_id)
    try:
        yield record
    except BaseException as error:
        _finish(database, record.run_id, FAILED, f"{type(error).__name__}: {error}")
        raise
    _finish(database, record.run_id, record.outcome, record.detail)


def _finish(database: Database, run_id: int, outcome: str, detail: str | None) -> None:
    with database.transaction() as session:
        row = session.get(JobRun, run_id)
        if row is not None:
            row.outcome = outcome
            row.detail = detail[:DETAIL_LIMIT] if detail else None
            row.finished_at = utc_now()


@dataclass(frozen=True)
class RunSummary:
    """How many runs of a job ended one way, and when the last of them started."""

    job: str
    outcome: str
    runs: int
    last_started: datetime


def run_summaries(database: Database) -> list[RunSummary]:
    """Counts of runs by job and outcome."""
    query = select(JobRun.job, JobRun.outcome, func.count(), func.max(JobRun.started_at)).group_by(
        JobRun.job, JobRun.outcome
    )
    with database.reading() as session:
        rows = session.execute(query).all()
    # SQLite hands back naive datetimes; every time stored here is UTC.
    return [
        RunSummary(job, outcome, runs, last if last.tzinfo else last.replace(tzinfo=UTC))
        for job, outcome, runs, last in rows
    ]
