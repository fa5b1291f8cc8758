"""Experiments in the database: start, stop, list, and the one running now.

At most one experiment runs at a time (a request is served one strategy): the database's
unique ``running`` column enforces it, so two operators starting experiments at once cannot
both succeed. A stopped experiment keeps its name (its impressions refer to it).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from otaku.experiments.definition import Arm, ExperimentSpec
from otaku.storage.database import Database
from otaku.storage.models import ExperimentRecord, utc_now

log = logging.getLogger(__name__)


class ExperimentConflictError(ValueError):
    """The name is taken, or another experiment is running."""


class NoSuchExperimentError(LookupError):
    """No experiment has that name."""


@dataclass(frozen=True)
class StoredExperiment:
    """An experiment as stored: its definition and when it ran."""

    spec: ExperimentSpec
    started_at: datetime
    stopped_at: datetime | None

    @property
    def running(self) -> bool:
        """Whether it runs now."""
        return self.stopped_at is None


def _utc(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _stored(row: ExperimentRecord) -> StoredExperiment:
    spec = ExperimentSpec(
        name=row.name,
        arms=tuple(Arm.model_validate(arm) for arm in row.arms),
        description=row.description,
    )
    stopped = None if row.stopped_at is None else _utc(row.stopped_at)
    return StoredExperiment(spec, _utc(row.started_at), stopped)


def check_model_versions(spec: ExperimentSpec, exists: Callable[[str], bool]) -> None:
    """Raise ValueError naming the first arm whose model version is not registered."""
    for index, arm in enumerate(spec.arms):
        if arm.model_version is not None and not exists(arm.model_version):
            raise ValueError(
                f"arms.{index}.model_version: no registered model version {arm.model_version}"
            )


def start_experiment(database: Database, spec: ExperimentSpec) -> StoredExperiment:
    """Store and start ``spec`` (:class:`ExperimentConflictError` when its name is taken or
    another experiment runs)."""
    try:
        with database.transaction() as session:
            if session.get(ExperimentRecord, spec.name) is not None:
                raise ExperimentConflictError(f"an experiment named {spec.name!r} exists already")
            running = session.scalar(
                select(ExperimentRecord.name).where(ExperimentRecord.running.is_(True))
            )
            if running is not None:
                raise ExperimentConflictError(
                    f"experiment {running!r} is running; stop it first (one runs at a time)"
                )
            row = ExperimentRecord(
                name=spec.name,
                arms=[arm.model_dump() for arm in spec.arms],
                description=spec.description,
                started_at=utc_now(),
                running=True,
            )
            session.add(row)
            session.flush()
            return _stored(row)
    except IntegrityError as error:  # lost a race with another start
        raise ExperimentConflictError(
            f"experiment {spec.name!r} was not started: another start won ({error.orig})"
        ) from None


def stop_experiment(database: Database, name: str) -> StoredExperiment:
    """Stop a running experiment (stopping a stopped one changes nothing)."""
    with database.transaction() as session:
        row = session.get(ExperimentRecord, name, with_for_update=True)
        if row is None:
            raise NoSuchExperimentError(f"no experiment named {name!r}")
        if row.running:
            row.running = None
            row.stopped_at = utc_now()
        return _stored(row)


def list_experiments(database: Database) -> list[StoredExperiment]:
    """Every experiment, the newest first."""
    with database.reading() as session:
        rows = session.scalars(
            select(ExperimentRecord).order_by(ExperimentRecord.started_at.desc())
        ).all()
        return [_stored(row) for row in rows]


def get_experiment(database: Database, name: str) -> StoredExperiment:
    """One experiment by name."""
    with database.reading() as session:
        row = session.get(ExperimentRecord, name)
        if row is None:
            raise NoSuchExperimentError(f"no experiment named {name!r}")
        return _stored(row)


def running_experiment(database: Database) -> ExperimentSpec | None:
    """The experiment running now (None: none is)."""
    with database.reading() as session:
        row = session.scalars(
            select(ExperimentRecord).where(ExperimentRecord.running.is_(True))
        ).first()
        return None if row is None else _stored(row).spec


class RunningExperiment:
    """The running experiment as one process sees it: read from the database at most every
    ``max_age_seconds`` (a start or stop reaches every server within that time); while the
    database cannot be read, the last one read stays in force."""

    def __init__(self, database: Database | None, max_age_seconds: float = 5.0) -> None:
        self._database = database
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._spec: ExperimentSpec | None = None
        self._read_at = float("-inf")

    def current(self) -> ExperimentSpec | None:
        """The running experiment (None: none, or no database)."""
        if self._database is None:
            return None
        if time.monotonic() - self._read_at <= self._max_age:
            return self._spec
        with self._lock:
            if time.monotonic() - self._read_at > self._max_age:
                try:
                    self._spec = running_experiment(self._database)
                except SQLAlchemyError as error:  # down, or not migrated yet
                    log.warning("running experiment not readable, keeping the last: %s", error)
                self._read_at = time.monotonic()
        return self._spec

    def refresh(self) -> None:
        """Read it again at the next request (after this process started or stopped one)."""
        self._read_at = float("-inf")
