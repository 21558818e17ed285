"""Status transitions of a session and what each one writes in its transaction:
the new state, the notification, the job that makes the network follow."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.domain.session import Status, StatusInfo, hours_delta
from s2cvpn.service import notifications
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import dedup, jobs, reservations, slots
from s2cvpn.storage.tables import SessionRow


_LOCK = select(SessionRow).where(SessionRow.session_id == bindparam("session")).with_for_update()


async def lock_session(db: AsyncSession, session_id: str) -> SessionRow | None:
    """The session's row, locked until the transaction ends (statement built once: hot path)."""
    return await db.scalar(_LOCK, {"session": session_id})


def planned_actuals(row: SessionRow, latency_ms: float | None) -> dict[str, object]:
    return {
        "actualSla": row.sla,
        "actualGuaranteeBandwidth": row.bandwidth_mbps,
        "actualLatency": None if latency_ms is None else round(latency_ms, 3),
        "actualPacketLossRate": 0.0,
    }


def start(db: AsyncSession, ctx: ServiceContext, row: SessionRow, now: datetime) -> None:
    """REQUESTED -> AVAILABLE: the network carries the session from now on."""
    row.status = Status.AVAILABLE
    row.started_at = now
    row.expires_at = now + hours_delta(row.duration_hours)
    notifications.notify_status(db, ctx, row, now)


async def end(db: AsyncSession, ctx: ServiceContext, row: SessionRow, info: StatusInfo, now: datetime, *, delete_after: bool = False) -> None:
    """Any live state -> UNAVAILABLE: the key is free at once; teardown returns the resources."""
    row.status = Status.UNAVAILABLE
    row.status_info = info
    end_at = row.expires_at if info == StatusInfo.DURATION_EXPIRED and row.expires_at and row.expires_at <= now else now
    row.ended_at = end_at
    row.expires_at = end_at
    row.purge_at = now + timedelta(seconds=ctx.settings.retention_seconds)
    await dedup.free_key(db, row.session_id)
    notifications.notify_status(db, ctx, row, now)
    jobs.enqueue(db, kind="teardown", session_id=row.session_id, now=now, payload={"delete": delete_after})
    ctx.work_ready.set()


async def release_network(db: AsyncSession, row: SessionRow, now: datetime) -> None:
    """After teardown: capacity and pool slot go back. Idempotent."""
    await reservations.release(db, row.session_id)
    await slots.return_slot(db, row.session_id)
    row.released_at = now
