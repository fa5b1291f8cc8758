"""The databases every storage test runs against: a SQLite file, and a fresh PostgreSQL
database on the machine's server (127.0.0.1:5432, trust auth), dropped afterwards.

Without a reachable PostgreSQL the PostgreSQL runs skip with the reason, unless
``OTAKU_REQUIRE_POSTGRES=1`` (set by ``.ci/run``): then they fail.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

POSTGRES_SERVER = os.environ.get(
    "OTAKU_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"
)


def sqlite_url(folder: Path) -> str:
    """A SQLite database file in ``folder``."""
    return f"sqlite:///{folder / 'otaku.db'}"


def postgres_database() -> Iterator[str]:
    """Create a uniquely named PostgreSQL database; yield its URL; drop it."""
    admin = create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    name = f"otaku_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        reason = f"PostgreSQL at {POSTGRES_SERVER} is not reachable: {error}"
        if os.environ.get("OTAKU_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
