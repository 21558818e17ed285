"""Status transitions of a session and what each one writes in its transaction:
the new state, the notification, the job that makes the network follow."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from s2cvpn.domain.session import Status, StatusInfo, hours_delta
from s2cvpn.service import notifications
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import jobs, reservations, session_store
from s2cvpn.storage.driver import Transaction
from s2cvpn.storage.session_store import SessionRecord


def planned_actuals(sla: str, bandwidth_mbps: int, latency_ms: float | None) -> dict[str, object]:
    return {
        "actualSla": sla,
        "actualGuaranteeBandwidth": bandwidth_mbps,
        "actualLatency": None if latency_ms is None else round(latency_ms, 3),
        "actualPacketLossRate": 0.0,
    }


async def start(tx: Transaction, ctx: ServiceContext, row: SessionRecord, now: datetime) -> SessionRecord | None:
    """REQUESTED -> AVAILABLE: the network carries the session from now on. None, having
    changed nothing, when the session is no longer REQUESTED.

    ``row`` is the session as its provisioning read it when it began. While REQUESTED a row
    changes only by ending (API updates and extensions take AVAILABLE sessions only) and by
    its sink answering 410, which the statement reads back: so starting is one guarded
    UPDATE, not a locked read of the whole row and then the update."""
    expires_at = now + hours_delta(row.duration_hours)
    sink_gone = await session_store.start(tx, row.session_id, started_at=now, expires_at=expires_at)
    if sink_gone is None:
        return None
    row = replace(row, status=Status.AVAILABLE, started_at=now, expires_at=expires_at, sink_gone=sink_gone)
    await notifications.notify_status(tx, ctx, row, now)
    return row


async def end(
    tx: Transaction, ctx: ServiceContext, row: SessionRecord, info: StatusInfo, now: datetime, *, delete_after: bool = False
) -> SessionRecord:
    """Any live state -> UNAVAILABLE: the duplicate key is free at once (the status leaves
    ``ux_sessions_live_dedup_key``); teardown returns the resources.

    A session deleted (``delete_after``) before any worker began its provisioning (claimed
    or not: ``jobs.begun_at``) is gone at once: the network holds nothing of it, so there is
    nothing to tear down, and what it reserved goes back in this transaction."""
    # a provisioning no worker has begun would only find it ended
    unbuilt = row.status == Status.REQUESTED and await jobs.cancel(tx, row.session_id, "provision")
    end_at = row.expires_at if info == StatusInfo.DURATION_EXPIRED and row.expires_at and row.expires_at <= now else now
    ended = {
        "status": Status.UNAVAILABLE,
        "status_info": info,
        "ended_at": end_at,
        "expires_at": end_at,
        "purge_at": purge_time(ctx, now),
    }
    if delete_after and unbuilt:
        row = replace(row, **ended)
        await notifications.notify_status(tx, ctx, row, now)
        await session_store.delete(tx, row.session_id)
        await release_network(tx, row.held)
        return row
    row = await session_store.update(tx, row, **ended)
    await notifications.notify_status(tx, ctx, row, now)
    await jobs.enqueue(tx, kind="teardown", session_id=row.session_id, now=now, payload={"delete": delete_after})
    ctx.work_ready.set()
    return row


def purge_time(ctx: ServiceContext, now: datetime) -> datetime:
    """When a session that ends ``now`` is forgotten (``retention_seconds`` later)."""
    return now + timedelta(seconds=ctx.settings.retention_seconds)


async def release_network(tx: Transaction, held: dict[str, int]) -> None:
    """After teardown: the capacity a session ``held`` goes back (its pool slot went with the
    row's ``released_at`` or its deletion, written by the caller). Callers run it last before
    the commit: the capacity counters it locks are shared by every session on the same links."""
    await reservations.release(tx, held)
