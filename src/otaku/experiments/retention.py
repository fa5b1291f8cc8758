"""Retention: impressions and clicks are deleted when older than their settings; a "not
interested" is kept (it promises the anime never comes back)."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete

from otaku.storage.database import Database
from otaku.storage.models import CLICKED, Feedback, Impression, utc_now


@dataclass(frozen=True)
class Pruned:
    """What was deleted."""

    impressions: int
    clicks: int


def prune_old(database: Database, impression_days: int, click_days: int) -> Pruned:
    """Delete impressions and "clicked" feedback older than their retention, in one
    transaction."""
    now = utc_now()
    with database.transaction() as session:
        impressions = session.execute(
            delete(Impression).where(Impression.shown_at < now - timedelta(days=impression_days))
        )
        clicks = session.execute(
            delete(Feedback).where(
                Feedback.kind == CLICKED, Feedback.created_at < now - timedelta(days=click_days)
            )
        )
        return Pruned(impressions.rowcount, clicks.rowcount)  # type: ignore[attr-defined]
