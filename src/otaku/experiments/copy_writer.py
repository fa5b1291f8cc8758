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

COLUMNS = (
    "impression_id",
    "request_id",
    "user_id",
    "experiment",
    "arm",
    "strategy",
    "model_version",
    "first_rank",
    "anime_ids",
    "latency_ms",
    "shown_at",
)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_ESCAPES)


def copy_line(row: dict[str, Any]) -> str:
    """One impression row in COPY's text format (tab-separated, \\N for null, escaped)."""
    user_id = row["user_id"]
    latency = float(row["latency_ms"])
    shown_at: datetime = row["shown_at"]
    fields = (
        _text(row["impression_id"]),
        _text(row["request_id"]),
        "\\N" if user_id is None else str(int(user_id)),
        _text(row["experiment"]),
        _text(row["arm"]),
        _text(row["strategy"]),
        _text(row["model_version"]),
        str(int(row["first_rank"])),
        "[" + ",".join(str(int(anime)) for anime in row["anime_ids"]) + "]",
        repr(latency) if math.isfinite(latency) else "NaN",
        shown_at.isoformat(),
    )
    return "\t".join(fields) + "\n"


class CopyConnection:
    """A PostgreSQL connection of the writer's own, opened on first use."""

    def __init__(self, url: URL, connect_timeout: int = 5) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connect_timeout = connect_timeout
        self._connection: Any = None
        columns = ", ".join(COLUMNS)
        self._statement = f"COPY impressions ({columns}) FROM STDIN"

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` in one transaction; raises psycopg.Error (then reconnects on the
        next call), and a unique violation when one of them is there already."""
        import psycopg

        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                self._conninfo, connect_timeout=self._connect_timeout, autocommit=True
            )
        payload = "".join(copy_line(row) for row in rows)
        try:
            with (
                self._connection.transaction(),
                self._connection.cursor() as cursor,
                cursor.copy(self._statement) as copy,
            ):
                copy.write(payload)
        except psycopg.Error:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection (the next write opens another)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
