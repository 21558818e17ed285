"""Claiming due notifications under a lease (the job queue claims the same way in one
driver-level statement, ``jobs.claim``). ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) keeps
concurrent claimers apart; SQLite has one writer at a time, which gives the same guarantee."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

Row = TypeVar("Row")


async def lease_due(
    db: AsyncSession,
    model: type[Row],
    *,
    due: InstrumentedAttribute[Any],
    order_by: tuple[InstrumentedAttribute[Any], ...],
    now: datetime,
    lease: timedelta,
    limit: int,
    **claimed: Any,
) -> list[Row]:
    """Lease up to ``limit`` rows due by ``now`` and not leased, count an attempt, set
    ``claimed`` columns, and commit."""
    statement = (
        select(model)
        .where(due <= now, or_(model.locked_until.is_(None), model.locked_until < now))  # type: ignore[attr-defined]
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    async with db.begin():
        rows = list((await db.scalars(statement)).all())
        for row in rows:
            row.locked_until = now + lease  # type: ignore[attr-defined]
            row.attempts += 1  # type: ignore[attr-defined]
            for column, value in claimed.items():
                setattr(row, column, value)
    return rows
