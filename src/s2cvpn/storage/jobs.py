"""The durable job queue: rows written with the state change that needs them, claimed
under a lease so that a crashed worker's job is taken over once its lease runs out.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so concurrent workers never take the
same row; SQLite has one writer at a time, which gives the same guarantee. A running job's
lease is renewed by its worker (``renew``, a heartbeat), so a lease shorter than a slow
driver call still never lets a second worker run the job at the same time; only a worker
that stopped renewing (killed, partitioned) loses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.storage.driver import Sql, Transaction
from s2cvpn.storage.leases import lease_due
from s2cvpn.storage.tables import JobRow

_ENQUEUE = Sql(
    "INSERT INTO jobs (kind, session_id, payload, run_at, attempts, created_at) VALUES (:kind, :session, :payload, :now, 0, :now)"
)
_CANCEL_UNCLAIMED = Sql("DELETE FROM jobs WHERE session_id = :session AND kind = :kind AND locked_by IS NULL")
_FINISH = Sql("DELETE FROM jobs WHERE job_id = :job")
_FINISH_LEASED = Sql("DELETE FROM jobs WHERE job_id = :job AND locked_by = :worker")


async def enqueue(tx: Transaction, *, kind: str, session_id: str | None, now: datetime, payload: dict[str, Any] | None = None) -> None:
    await tx.execute(_ENQUEUE, kind=kind, session=session_id, payload=payload or {}, now=now)


async def claim(db: AsyncSession, *, worker_id: str, now: datetime, lease: timedelta, limit: int) -> list[JobRow]:
    """Lease up to ``limit`` due jobs to this worker (commits)."""
    return await lease_due(
        db, JobRow, due=JobRow.run_at, order_by=(JobRow.run_at, JobRow.job_id), now=now, lease=lease, limit=limit, locked_by=worker_id
    )


async def cancel_unclaimed(tx: Transaction, session_id: str, kind: str) -> int:
    """Drop the session's ``kind`` jobs that no worker holds (a running one is left to finish)."""
    return await tx.execute(_CANCEL_UNCLAIMED, session=session_id, kind=kind)


async def finish(tx: Transaction, job_id: int, worker_id: str | None = None) -> bool:
    """Delete a done job; with ``worker_id``, only while that worker still holds its lease."""
    if worker_id is None:
        return bool(await tx.execute(_FINISH, job=job_id))
    return bool(await tx.execute(_FINISH_LEASED, job=job_id, worker=worker_id))


async def renew(db: AsyncSession, job_ids: Iterable[int], worker_id: str, *, until: datetime) -> set[int]:
    """Extend the leases of running jobs (heartbeat); returns the ids this worker still holds."""
    ids = list(job_ids)
    if not ids:
        return set()
    result = await db.execute(
        update(JobRow)
        .where(JobRow.job_id.in_(ids), JobRow.locked_by == worker_id)
        .values(locked_until=until)
        .returning(JobRow.job_id)
    )
    return set(result.scalars().all())


async def retry_later(db: AsyncSession, job_id: int, *, run_at: datetime, error: str, worker_id: str | None = None) -> None:
    statement = update(JobRow).where(JobRow.job_id == job_id)
    if worker_id is not None:
        statement = statement.where(JobRow.locked_by == worker_id)
    await db.execute(statement.values(run_at=run_at, locked_until=None, locked_by=None, last_error=error[:2000]))


async def release_lease(db: AsyncSession, job_id: int, worker_id: str) -> None:
    """Give a job back unchanged (graceful shutdown): the next worker takes it at once."""
    await db.execute(
        update(JobRow)
        .where(JobRow.job_id == job_id, JobRow.locked_by == worker_id)
        .values(locked_until=None, locked_by=None, attempts=JobRow.attempts - 1)
    )


async def next_run_at(db: AsyncSession) -> datetime | None:
    return await db.scalar(select(func.min(JobRow.run_at)))


async def pending_for(db: AsyncSession, session_id: str) -> list[JobRow]:
    return list((await db.scalars(select(JobRow).where(JobRow.session_id == session_id))).all())
