"""Bulk loads into PostgreSQL: a large COPY runs with the table's keys and indexes set aside
and rebuilt after it, in the same transaction.

Checking a foreign key and inserting into a B-tree row by row is most of a COPY's cost; one
sort-built index and one join-validated foreign key after the COPY cost far less, and the
result is the same table (the definitions are read back from the catalog and re-created
as they were). DDL is transactional in PostgreSQL, so a failure anywhere rolls all of it back.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

# Set keys aside only when the load is at least this share of the rows already there: an
# index rebuild costs the whole table, so a small load into a large table keeps its indexes.
REBUILD_SHARE = 0.5


@dataclass(frozen=True)
class SetAside:
    """A constraint or index of a table, with the statement that re-creates it."""

    name: str
    is_constraint: bool
    create: str


def _set_asides(session: Session, table: str) -> list[SetAside]:
    constraints = session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype IN ('p', 'u', 'f') "
            "ORDER BY contype = 'f', conname"  # keys before the foreign keys
        ),
        {"table": table},
    ).all()
    owned = {name for name, _, kind in constraints if kind in ("p", "u")}
    indexes = session.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = :table ORDER BY indexname"
        ),
        {"table": table},
    ).all()
    found = [
        SetAside(name, True, f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        for name, definition, _ in constraints
    ]
    found += [
        SetAside(name, False, definition) for name, definition in indexes if name not in owned
    ]
    return found


def worth_setting_aside(session: Session, table: str, rows: int) -> bool:
    """Whether loading ``rows`` into ``table`` is large enough to rebuild its indexes after."""
    estimate = session.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)"),
        {"table": table},
    ).scalar_one()
    return rows >= REBUILD_SHARE * max(float(estimate), 0.0)


@contextmanager
def keys_set_aside(session: Session, table: str) -> Iterator[None]:
    """Drop ``table``'s keys, foreign keys and indexes; re-create them all when the block ends
    without error (a duplicate or dangling row then fails the re-creation, and the
    transaction rolls back)."""
    aside = _set_asides(session, table)
    for item in reversed(aside):  # foreign keys first: a key may back one of them
        if item.is_constraint:
            session.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{item.name}"'))
        else:
            session.execute(text(f'DROP INDEX "{item.name}"'))
    yield
    for item in aside:
        session.execute(text(item.create))
