"""The notification outbox: CloudEvents written with the status change they report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.storage.tables import EventRow


def add_event(
    db: AsyncSession, *, event_id: str, session_id: str, sink: str, access_token: str | None, body: dict[str, Any], now: datetime
) -> None:
    db.add(
        EventRow(
            event_id=event_id,
            session_id=session_id,
            sink=sink,
            access_token=access_token,
            body=body,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


async def claim_due(db: AsyncSession, *, now: datetime, lease: timedelta, limit: int) -> list[EventRow]:
    statement = (
        select(EventRow)
        .where(EventRow.next_attempt_at <= now, or_(EventRow.locked_until.is_(None), EventRow.locked_until < now))
        .order_by(EventRow.next_attempt_at, EventRow.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    async with db.begin():
        events = list((await db.scalars(statement)).all())
        for event in events:
            event.locked_until = now + lease
            event.attempts += 1
    return events


async def mark_done(db: AsyncSession, event_id: str, *, outcome: str, now: datetime) -> None:
    await db.execute(
        update(EventRow)
        .where(EventRow.event_id == event_id)
        .values(next_attempt_at=None, locked_until=None, delivered_at=now, outcome=outcome)
    )


async def mark_retry(db: AsyncSession, event_id: str, *, at: datetime, outcome: str) -> None:
    await db.execute(update(EventRow).where(EventRow.event_id == event_id).values(next_attempt_at=at, locked_until=None, outcome=outcome))


async def drop_pending_for_session(db: AsyncSession, session_id: str, *, outcome: str, now: datetime) -> None:
    await db.execute(
        update(EventRow)
        .where(EventRow.session_id == session_id, EventRow.next_attempt_at.is_not(None))
        .values(next_attempt_at=None, locked_until=None, outcome=outcome, delivered_at=None)
    )


async def next_due(db: AsyncSession) -> datetime | None:
    return await db.scalar(select(func.min(EventRow.next_attempt_at)))
