"""The impression writer's own PostgreSQL connection: one COPY and one commit per batch.

The writer thread shares the GIL with the requests of its process, so what it does per
batch in Python is what it takes from them. Through a pooled SQLAlchemy session a batch
cost ~1.2 ms of CPU before its first row (session, pre-ping, transaction) and ~25 µs a row
(`write_row` adapting each value); here a batch is a few calls and a row one string.
"""

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import URL

from otaku.storage.models import Impression

COLUMNS = tuple(column.name for column in Impression.__table__.columns)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class CopyError(Exception):
    """The database refused a batch or could not be reached (the cause is chained)."""


def _field(value: object) -> str:
    """One value in COPY's text format: \\N for null, text escaped, a list as JSON."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "NaN"
    if isinstance(value, list):
        return "[" + ",".join(str(int(item)) for item in value) + "]"
    return str(int(value))  # type: ignore[call-overload]


def copy_line(row: dict[str, Any]) -> str:
    """One impression row in COPY's text format, its columns in :data:`COLUMNS` order."""
    return "\t".join(_field(row[column]) for column in COLUMNS) + "\n"


class CopyConnection:
    """A PostgreSQL connection of the writer's own, opened on first use."""

    def __init__(self, url: URL, connect_timeout: int = 5) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connect_timeout = connect_timeout
        self._connection: Any = None
        columns = ", ".join(COLUMNS)
        self._statement = f"COPY {Impression.__tablename__} ({columns}) FROM STDIN"

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` in one transaction; raises CopyError (the next call reconnects),
        also when one of them is there already."""
        import psycopg

        try:
            payload = "".join(copy_line(row) for row in rows)
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(
                    self._conninfo, connect_timeout=self._connect_timeout, autocommit=True
                )
            with (
                self._connection.transaction(),
                self._connection.cursor() as cursor,
                cursor.copy(self._statement) as copy,
            ):
                copy.write(payload)
        except (psycopg.Error, TypeError, ValueError) as error:  # a value COPY cannot take too
            self.close()
            raise CopyError(str(error)) from error

    def close(self) -> None:
        """Close the connection (the next write opens another)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
