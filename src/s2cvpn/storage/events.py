"""The notification outbox: CloudEvents written with the status change they report.

``s2cvpn_notifications_total{result}`` counts outcomes as they are recorded here:
``delivered`` (the sink answered 2xx), ``gone`` (410), ``abandoned`` (retry budget spent
or sink refused), ``retry`` (a failed attempt that will be repeated). An event's ``id``
is chosen once, when it is written, so every retry sends the same CloudEvent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.storage.driver import Sql, Transaction
from s2cvpn.storage.leases import lease_due
from s2cvpn.storage.tables import EventRow

NOTIFICATIONS = Counter("s2cvpn_notifications", "Notification delivery outcomes recorded by this process", ["result"])


def _result(outcome: str) -> str:
    if outcome.startswith("2"):
        return "delivered"
    if outcome == "gone":
        return "gone"
    return "abandoned"


_ADD = Sql(
    "INSERT INTO events (event_id, session_id, sink, access_token, body, attempts, next_attempt_at, created_at) "
    "VALUES (:event, :session, :sink, :token, :body, 0, :now, :now)"
)


_ANY_DUE = Sql("SELECT 1 FROM events WHERE next_attempt_at <= :now AND (locked_until IS NULL OR locked_until < :now) LIMIT 1")
_FORGET_FINISHED = Sql("DELETE FROM events WHERE created_at < :before AND next_attempt_at IS NULL")


async def any_due(tx: Transaction, now: datetime) -> bool:
    """Whether ``claim_due`` would find anything: a plain read, where the claim is a write
    transaction (on SQLite, the database's one write lock, for as long as the ORM's
    thread takes to answer)."""
    return await tx.fetchrow(_ANY_DUE, now=now) is not None


async def forget_finished(tx: Transaction, before: datetime) -> None:
    """Drop the events created before ``before`` whose delivery is over (delivered, gone or
    abandoned); pending ones are kept however old."""
    await tx.execute(_FORGET_FINISHED, before=before)


async def add_event(
    tx: Transaction, *, event_id: str, session_id: str, sink: str, access_token: str | None, body: dict[str, Any], now: datetime
) -> None:
    await tx.execute(_ADD, event=event_id, session=session_id, sink=sink, token=access_token, body=body, now=now)


async def claim_due(db: AsyncSession, *, now: datetime, lease: timedelta, limit: int) -> list[EventRow]:
    return await lease_due(
        db, EventRow, due=EventRow.next_attempt_at, order_by=(EventRow.next_attempt_at, EventRow.created_at), now=now, lease=lease, limit=limit
    )


async def mark_done(db: AsyncSession, event_id: str, *, outcome: str, now: datetime) -> None:
    NOTIFICATIONS.labels(_result(outcome)).inc()
    await db.execute(
        update(EventRow)
        .where(EventRow.event_id == event_id)
        .values(next_attempt_at=None, locked_until=None, delivered_at=now, outcome=outcome)
    )


async def mark_retry(db: AsyncSession, event_id: str, *, at: datetime, outcome: str) -> None:
    NOTIFICATIONS.labels("retry").inc()
    await db.execute(update(EventRow).where(EventRow.event_id == event_id).values(next_attempt_at=at, locked_until=None, outcome=outcome))


async def drop_pending_for_session(db: AsyncSession, session_id: str, *, outcome: str, now: datetime) -> None:
    await db.execute(
        update(EventRow)
        .where(EventRow.session_id == session_id, EventRow.next_attempt_at.is_not(None))
        .values(next_attempt_at=None, locked_until=None, outcome=outcome, delivered_at=None)
    )


async def next_due(db: AsyncSession) -> datetime | None:
    return await db.scalar(select(func.min(EventRow.next_attempt_at)))
