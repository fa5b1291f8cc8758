"""The relational database: engine, sessions, transactions and schema migrations (Alembic).

SQLite file by default (``<OTAKU_HOME>/otaku.db``); PostgreSQL with ``OTAKU_DATABASE_URL``
(e.g. ``postgresql+psycopg://user@host:5432/otaku``).
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from otaku.config import Settings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Alembic's `op` and `context` are process-wide proxies: two migrations in two threads at once
# (ours, and MLflow's when it opens a new SQLite registry) corrupt each other. Both take this.
ALEMBIC_LOCK = threading.RLock()
# ... and across processes (API replicas and jobs starting together), PostgreSQL serialises
# them with this transaction-scoped advisory lock; the late ones find the schema current.
MIGRATION_ADVISORY_LOCK = 0x07A4_2026


def database_url(settings: Settings) -> str:
    """The configured database URL, or the SQLite file under ``OTAKU_HOME``."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{(settings.home / 'otaku.db').resolve()}"


# Execution option of the engine that write transactions use: on SQLite they begin with
# BEGIN IMMEDIATE, taking the write lock first. A deferred transaction that reads and then
# writes fails at once ("database is locked") when another writer got in between; an
# immediate one waits for it (up to the connection timeout), so concurrent writes serialise.
WRITE_TRANSACTION = "otaku_write_transaction"


def _configure_sqlite_connection(dbapi_connection: Any, _: Any) -> None:
    # SQLAlchemy, not the driver, begins transactions (see _begin_sqlite_transaction)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_TRANSACTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_db_engine(url: str) -> Engine:
    """An engine that checks connections before use (a restarted server is reconnected)."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    # connect_timeout: an unreachable server fails a request (or a metrics scrape) in seconds,
    # not after the operating system's TCP timeout
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 5},
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with ALEMBIC_LOCK, engine.execution_options(**{WRITE_TRANSACTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_ADVISORY_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def wait_until_reachable(engine: Engine, seconds: float, pause: float = 1.0) -> None:
    """Return once the database accepts a connection; retry for up to ``seconds`` (a server
    still starting beside this process), then raise the driver's last error."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with engine.connect():
                return
        except OperationalError as error:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database not reachable yet, retrying: %s", error.orig)
            time.sleep(pause)


class Database:
    """An engine plus a session factory; every unit of work is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        writer = engine.execution_options(**{WRITE_TRANSACTION: True})
        self._sessions = sessionmaker(writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings, run_migrations: bool = True) -> "Database":
        """The configured database, migrated to the newest schema."""
        database = cls(create_db_engine(database_url(settings)))
        wait_until_reachable(database.engine, settings.database_wait_seconds)
        if run_migrations:
            migrate(database.engine)
        return database

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back on any error (a write
        transaction: on SQLite it holds the write lock from its start)."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads (one transaction; on SQLite it does not take the write lock, so
        writers go on meanwhile — a long read such as retrain's snapshot does not stall them)."""
        with self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
