"""Session use cases: create, read, list, change, extend, delete.

Each use case owns its transaction. Whatever the network must do afterwards is written
as a job in that same transaction (never fire-and-forget), so a crash loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn import errors
from s2cvpn.domain.session import LIVE_STATUSES, Status, StatusInfo, duration_hours, hours_delta
from s2cvpn.network import planner, pools, resolve
from s2cvpn.network.plans import ConnectionRequest, Plan
from s2cvpn.service import lifecycle, sinks, specs
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import dedup, jobs, reservations, slots
from s2cvpn.storage.session_reads import SessionView
from s2cvpn.storage.tables import IdempotencyRow, SessionRow

PLAN_ATTEMPTS = 5
IDEMPOTENCY_WINDOW = timedelta(hours=24)
DUPLICATE = "an active session already connects this CE, PE and application servers"


def _dedup_key(client_id: str, body: Mapping[str, Any]) -> str:
    """Same client, same CE and PE primary addresses, same application servers."""
    servers = sorted(json.dumps(s, sort_keys=True) for s in body["applicationServers"])
    material = json.dumps(
        [client_id, body["customerEdge"]["primaryIpAddress"], body["providerEdge"]["primaryIpAddress"], servers], sort_keys=True
    )
    return hashlib.sha256(material.encode()).hexdigest()


def granted_hours(ctx: ServiceContext, duration: Mapping[str, Any] | None) -> float:
    if duration is None:
        return ctx.settings.default_duration_hours
    hours = duration_hours(duration["value"], duration["unit"])
    if hours > ctx.settings.max_duration_hours:
        raise errors.OutOfRange(f"duration exceeds the maximum of {ctx.settings.max_duration_hours:g} hours")
    if hours * 3600 < 1:
        raise errors.OutOfRange("duration must be at least one second")
    return hours


async def _reserve(
    db: AsyncSession, ctx: ServiceContext, session_id: str, request: ConnectionRequest, now: datetime, held: dict[str, int]
) -> Plan:
    """Plan against the current load (minus ``held``, what the session holds now) and reserve.

    A ``CapacityRace`` means another transaction took the capacity after we read the load;
    the savepoint is rolled back and we plan again on fresh figures.
    """
    day = now.date()
    for _ in range(PLAN_ATTEMPTS):
        load = await reservations.current_load(db)
        for rid, mbps in held.items():
            load[rid] = load.get(rid, 0) - mbps
        plan = planner.plan_connection(ctx.inventory, request, load, day)
        try:
            async with db.begin_nested():
                await reservations.set_reservation(
                    db, session_id, plan.demands, lambda rid: ctx.inventory.capacity_of(rid, day), held=held
                )
            return plan
        except reservations.CapacityRace:
            continue
    raise errors.InsufficientResources("capacity is being taken by concurrent requests; try again")


async def _replay_idempotent(db: AsyncSession, client_id: str, key: str, now: datetime) -> SessionRow | None:
    row = await db.get(IdempotencyRow, (client_id, key))
    if row is None or row.created_at < now - IDEMPOTENCY_WINDOW:
        return None
    return await db.get(SessionRow, row.session_id)


async def create_session(
    ctx: ServiceContext, *, client_id: str, body: dict[str, Any], idempotency_key: str | None
) -> tuple[SessionRow, bool]:
    """Accept a session (REQUESTED) and queue its provisioning. Returns (row, created)."""
    now = ctx.clock.now()
    hours = granted_hours(ctx, body.get("duration"))
    if body.get("sink"):
        sinks.check_sink(body["sink"], allow_private=ctx.settings.sink_allow_private)
    request = specs.connection_request(client_id, body)
    resolve.resolve_endpoints(ctx.inventory, request)  # 422 before any write
    network = await ctx.network_ready()
    if not network.ok:  # take no order the network cannot start on
        raise errors.Unavailable(f"the network cannot take orders now: {network.detail}", headers={"Retry-After": "5"})
    session_id = str(uuid.uuid4())
    credential = body.pop("sinkCredential", None)
    dedup_key = _dedup_key(client_id, body)
    async with ctx.db() as db:
        try:
            async with db.begin():
                if idempotency_key:
                    first = await _replay_idempotent(db, client_id, idempotency_key, now)
                    if first is not None:
                        return first, False
                await _check_quota(db, ctx, client_id)
                if not await dedup.claim_key(db, dedup_key, session_id):
                    raise errors.AlreadyExists(DUPLICATE)
                plan = await _reserve(db, ctx, session_id, request, now, held={})
                slot = await slots.take_slot(db, session_id, pools.pool_size(ctx.inventory))
                allocation = pools.allocation_for(ctx.inventory, slot, 2 if plan.secondary else 1)
                row = SessionRow(
                    session_id=session_id,
                    client_id=client_id,
                    status=Status.REQUESTED,
                    request=body,
                    sla=body["sla"],
                    bandwidth_mbps=body["guaranteeBandwidth"],
                    max_latency_ms=body.get("maxLatency"),
                    duration_hours=hours,
                    created_at=now,
                    plan=specs.plan_to_json(plan),
                    allocation=specs.allocation_to_json(allocation),
                    actual=None,
                    sink=body.get("sink"),
                    sink_credential=credential,
                    sink_gone=False,
                    dedup_key=dedup_key,
                )
                row.actual = lifecycle.planned_actuals(row, plan.latency_ms)
                db.add(row)
                if idempotency_key:
                    db.add(IdempotencyRow(client_id=client_id, key=idempotency_key, session_id=session_id, created_at=now))
                jobs.enqueue(db, kind="provision", session_id=session_id, now=now)
        except slots.PoolExhausted as exc:
            raise errors.InsufficientResources(str(exc)) from None
        except IntegrityError:
            # a concurrent request with the same Idempotency-Key committed first
            if idempotency_key:
                async with ctx.db() as again:
                    first = await _replay_idempotent(again, client_id, idempotency_key, now)
                if first is not None:
                    return first, False
            raise errors.AlreadyExists(DUPLICATE) from None
    ctx.work_ready.set()
    return row, True


async def _check_quota(db: AsyncSession, ctx: ServiceContext, client_id: str) -> None:
    limit = ctx.settings.max_active_sessions_per_client
    if not limit:
        return
    if db.bind.dialect.name == "postgresql":
        # creates of one client queue here, so the count below cannot be stale (SQLite's
        # BEGIN IMMEDIATE already serialises every writer)
        await db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:client_id, 0))"), {"client_id": client_id})
    active = await db.scalar(
        select(func.count()).select_from(SessionRow).where(SessionRow.client_id == client_id, SessionRow.status.in_(LIVE_STATUSES))
    )
    if (active or 0) >= limit:
        raise errors.QuotaExceeded(f"the client already has {limit} active sessions", headers={"Retry-After": "60"})


async def owned(db: AsyncSession, client_id: str, session_id: str) -> SessionRow:
    """The caller's session, locked, or 404 (unknown, gone) / 403 (another client's)."""
    row = await lifecycle.lock_session(db, session_id)
    _check_owner(row, client_id, session_id)
    return row  # type: ignore[return-value]  # _check_owner refused None


def _check_owner(row: Any, client_id: str, session_id: str) -> None:
    if row is None:
        raise errors.NotFound(f"session {session_id} does not exist")
    if row.client_id != client_id:
        raise errors.PermissionDenied("the session belongs to another client")


async def get_session(ctx: ServiceContext, *, client_id: str, session_id: str) -> SessionView:
    row = await ctx.session_reads.one(session_id)
    _check_owner(row, client_id, session_id)
    return row  # type: ignore[return-value]  # _check_owner refused None


async def list_sessions(ctx: ServiceContext, *, client_id: str, page: int, per_page: int) -> tuple[list[SessionView], int]:
    return await ctx.session_reads.page(client_id, (page - 1) * per_page, per_page)


async def update_session(ctx: ServiceContext, *, client_id: str, session_id: str, changes: dict[str, Any]) -> SessionRow:
    """Change bandwidth, SLA or latency bound; re-plans and re-reserves atomically."""
    now = ctx.clock.now()
    async with ctx.db() as db:
        async with db.begin():
            row = await owned(db, client_id, session_id)
            if row.status != Status.AVAILABLE:
                raise errors.IncompatibleState(f"the session is {row.status}; only an AVAILABLE session can be changed")
            body = dict(row.request)
            for key in ("guaranteeBandwidth", "sla", "maxLatency"):
                if key in changes:
                    if changes[key] is None:
                        body.pop(key, None)
                    else:
                        body[key] = changes[key]
            request = specs.connection_request(client_id, body)
            plan = await _reserve(db, ctx, session_id, request, now, held=await reservations.held_by(db, session_id))
            old_paths = 2 if row.plan and row.plan.get("secondary") else 1
            new_paths = 2 if plan.secondary else 1
            if new_paths != old_paths:
                slot = row.allocation["slot"] if row.allocation else 0
                row.allocation = specs.allocation_to_json(pools.allocation_for(ctx.inventory, slot, new_paths))
            row.request = body
            row.sla = body["sla"]
            row.bandwidth_mbps = body["guaranteeBandwidth"]
            row.max_latency_ms = body.get("maxLatency")
            row.plan = specs.plan_to_json(plan)
            row.actual = lifecycle.planned_actuals(row, plan.latency_ms)
            jobs.enqueue(db, kind="modify", session_id=session_id, now=now)
    ctx.work_ready.set()
    return row


async def extend_session(ctx: ServiceContext, *, client_id: str, session_id: str, duration: Mapping[str, Any]) -> SessionRow:
    """Add time, capped at the configured maximum duration."""
    now = ctx.clock.now()
    async with ctx.db() as db:
        async with db.begin():
            row = await owned(db, client_id, session_id)
            if row.status != Status.AVAILABLE or row.started_at is None:
                raise errors.IncompatibleState(f"the session is {row.status}; only an AVAILABLE session can be extended")
            added = duration_hours(duration["value"], duration["unit"])
            row.duration_hours = min(row.duration_hours + added, ctx.settings.max_duration_hours)
            row.expires_at = row.started_at + hours_delta(row.duration_hours)
            if row.expires_at <= now:  # capped below the time already served: it ends now
                await lifecycle.end(db, ctx, row, StatusInfo.DURATION_EXPIRED, now)
    return row


async def delete_session(ctx: ServiceContext, *, client_id: str, session_id: str) -> None:
    """Tear the session down; once the network is clean the session is gone (404)."""
    now = ctx.clock.now()
    async with ctx.db() as db:
        async with db.begin():
            row = await owned(db, client_id, session_id)
            if row.status in LIVE_STATUSES:
                await lifecycle.end(db, ctx, row, StatusInfo.DELETE_REQUESTED, now, delete_after=True)
            elif row.status_info != StatusInfo.DELETE_REQUESTED:
                # already ended (expired or terminated): its teardown ran or is queued; forget it
                row.status_info = StatusInfo.DELETE_REQUESTED
                row.purge_at = now
    ctx.work_ready.set()
