"""Session use cases: create, read, list, change, extend, delete.

Each use case owns its transaction. Whatever the network must do afterwards is written
as a job in that same transaction (never fire-and-forget), so a crash loses nothing. On
PostgreSQL a create's writes are one statement (``storage.acceptance``), and so is a
delete of a live session, two when its sink is to be told (``storage.withdrawal``); each
statement is its own transaction: they run with no BEGIN and COMMIT (a create with a
quota keeps its transaction, for the quota's lock), and the creates, or the deletes, in
flight share one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from s2cvpn import errors
from s2cvpn.domain.session import LIVE_STATUSES, Status, StatusInfo, duration_hours, hours_delta
from s2cvpn.network import planner, pools, resolve
from s2cvpn.network.plans import ConnectionRequest, Plan
from s2cvpn.service import lifecycle, sinks, specs
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import idempotency, jobs, reservations, session_store, slots
from s2cvpn.storage.driver import Transaction, UniqueViolation
from s2cvpn.storage.session_reads import SessionView
from s2cvpn.storage.session_store import SessionRecord

T = TypeVar("T")
PLAN_ATTEMPTS = 5
IDEMPOTENCY_WINDOW = timedelta(hours=24)
DUPLICATE = "an active session already connects this CE, PE and application servers"


# what ``json.dumps(value, sort_keys=True)`` writes (the keys stored in live sessions were
# made so), without building an encoder on every call as ``json.dumps`` does for any option
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True)


def _dedup_key(client_id: str, body: Mapping[str, Any]) -> str:
    """Same client, same CE and PE primary addresses, same application servers."""
    servers = sorted(_CANONICAL_JSON.encode(s) for s in body["applicationServers"])
    material = _CANONICAL_JSON.encode(
        [client_id, body["customerEdge"]["primaryIpAddress"], body["providerEdge"]["primaryIpAddress"], servers]
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


def _plan(ctx: ServiceContext, request: ConnectionRequest, now: datetime, load: dict[str, int], held: dict[str, int]) -> Plan:
    """Plan against ``load`` (the caller's own copy), minus ``held`` (what the session holds now)."""
    for rid, mbps in held.items():
        load[rid] = load.get(rid, 0) - mbps
    return planner.plan_connection(ctx.inventory, request, load, now.date())


async def _reserve(tx: Transaction, ctx: ServiceContext, plan: Plan, now: datetime, held: dict[str, int]) -> None:
    """Reserve what ``plan`` demands (the caller writes ``plan`` on the session's row, and
    that is what the session holds from then on). Callers run this last before the commit: its guarded
    UPDATEs lock counters that every session on the same links shares, and the locks are
    held until the commit.

    A ``CapacityRace`` means another transaction took the capacity after we read the load:
    the caller's transaction is rolled back and run again on fresh figures (``_retrying_races``).
    """
    await reservations.reserve(tx, held, plan.demands, _capacity(ctx, now))


def _capacity(ctx: ServiceContext, now: datetime) -> Callable[[str], int]:
    """A resource's capacity today (a link's may change on a planned upgrade date)."""
    day = now.date()
    return lambda rid: ctx.inventory.capacity_of(rid, day)


async def _retrying_races(
    ctx: ServiceContext, work: Callable[[Transaction, dict[str, int]], Awaitable[T]], *, autocommit: bool = False
) -> T:
    """Run ``work`` in a transaction (``Database.autocommit`` with ``autocommit``) with the
    load to plan on, read just before it (``LoadReader``); again, on a newer load, when it
    lost a capacity race."""
    for attempt in range(PLAN_ATTEMPTS):
        load = await ctx.loads.current(after_race=attempt > 0)
        try:
            async with ctx.database.autocommit() if autocommit else ctx.database.transaction() as tx:
                return await work(tx, load)
        except reservations.CapacityRace:
            continue
    raise errors.InsufficientResources("capacity is being taken by concurrent requests; try again")


async def _replay_idempotent(tx: Transaction, client_id: str, key: str, now: datetime) -> SessionRecord | None:
    """The session ``key`` created, or None for a key not used yet. A key whose session has
    gone since (deleted) can no longer be answered with it, and creates nothing."""
    session_id = await idempotency.first_session(tx, client_id, key, since=now - IDEMPOTENCY_WINDOW)
    if session_id is None:
        return None
    first = await session_store.get(tx, session_id)
    if first is None:
        raise errors.AlreadyExists(f"this Idempotency-Key created session {session_id}, which no longer exists")
    return first


async def create_session(
    ctx: ServiceContext, *, client_id: str, body: dict[str, Any], idempotency_key: str | None
) -> tuple[SessionRecord, bool]:
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

    async def accept(tx: Transaction, load: dict[str, int]) -> tuple[SessionRecord, bool]:
        if idempotency_key:
            first = await _replay_idempotent(tx, client_id, idempotency_key, now)
            if first is not None:
                return first, False
        await _check_quota(tx, ctx, client_id)
        try:
            plan = _plan(ctx, request, now, load, held={})
        except errors.S2CError:
            # a twin of a live session is told so, not that it does not fit beside its twin
            if await session_store.has_live_twin(tx, dedup_key):
                raise errors.AlreadyExists(DUPLICATE) from None
            raise
        planned = specs.plan_to_json(plan)
        actual = lifecycle.planned_actuals(body["sla"], body["guaranteeBandwidth"], plan.latency_ms)
        capacity = _capacity(ctx, now)

        async def accept_in(slot: int) -> SessionRecord | None:
            allocation = pools.allocation_for(ctx.inventory, slot, 2 if plan.secondary else 1)
            record = SessionRecord(
                session_id=session_id,
                client_id=client_id,
                status=Status.REQUESTED,
                status_info=None,
                request=body,
                sla=body["sla"],
                bandwidth_mbps=body["guaranteeBandwidth"],
                max_latency_ms=body.get("maxLatency"),
                duration_hours=hours,
                created_at=now,
                started_at=None,
                expires_at=None,
                ended_at=None,
                purge_at=None,
                plan=planned,
                allocation=specs.allocation_to_json(allocation),
                actual=actual,
                sink=body.get("sink"),
                sink_credential=credential,
                sink_gone=False,
                dedup_key=dedup_key,
                released_at=None,
                slot=slot,
            )
            # False: the slot is held; a live twin raises UniqueViolation, a full counter CapacityRace
            return record if await ctx.acceptances.accept(tx, record, capacity, idempotency_key=idempotency_key) else None

        return await slots.take(tx, pools.pool_size(ctx.inventory), accept_in), True

    try:
        # without a quota to count under a lock, every write of the create is the one
        # statement of its acceptance: no transaction needed on PostgreSQL, and no connection
        # held while it plans or while its acceptance waits to go with others
        record, created = await _retrying_races(ctx, accept, autocommit=not ctx.settings.max_active_sessions_per_client)
    except slots.PoolExhausted as exc:
        raise errors.InsufficientResources(str(exc)) from None
    except UniqueViolation:
        # a concurrent request with the same Idempotency-Key committed first
        if idempotency_key:
            async with ctx.database.reading() as tx:
                first = await _replay_idempotent(tx, client_id, idempotency_key, now)
            if first is not None:
                return first, False
        raise errors.AlreadyExists(DUPLICATE) from None
    if created:
        ctx.work_ready.set()
    return record, created


async def _check_quota(tx: Transaction, ctx: ServiceContext, client_id: str) -> None:
    limit = ctx.settings.max_active_sessions_per_client
    if limit and await session_store.count_live(tx, client_id) >= limit:
        raise errors.QuotaExceeded(f"the client already has {limit} active sessions", headers={"Retry-After": "60"})


async def owned(tx: Transaction, client_id: str, session_id: str) -> SessionRecord:
    """The caller's session, locked, or 404 (unknown, gone) / 403 (another client's)."""
    row = await session_store.get(tx, session_id, lock=True)
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


async def session_l3nm(ctx: ServiceContext, *, client_id: str, session_id: str) -> dict[str, Any]:
    """The session's IETF L3NM document, from its whole row (the API's view has no plan)."""
    async with ctx.database.reading() as tx:
        row = await session_store.get(tx, session_id)
    _check_owner(row, client_id, session_id)
    return specs.render_l3nm(row, ctx.inventory)  # type: ignore[arg-type]  # _check_owner refused None


async def list_sessions(ctx: ServiceContext, *, client_id: str, page: int, per_page: int) -> tuple[list[SessionView], int]:
    return await ctx.session_reads.page(client_id, (page - 1) * per_page, per_page)


async def update_session(ctx: ServiceContext, *, client_id: str, session_id: str, changes: dict[str, Any]) -> SessionRecord:
    """Change bandwidth, SLA or latency bound; re-plans and re-reserves atomically."""
    now = ctx.clock.now()

    async def change(tx: Transaction, load: dict[str, int]) -> SessionRecord:
        row = await owned(tx, client_id, session_id)
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
        held = row.held
        plan = _plan(ctx, request, now, load, held)
        allocation = row.allocation
        if (2 if plan.secondary else 1) != (2 if row.plan and row.plan.get("secondary") else 1):
            slot = row.allocation["slot"] if row.allocation else 0
            allocation = specs.allocation_to_json(pools.allocation_for(ctx.inventory, slot, 2 if plan.secondary else 1))
        row = await session_store.update(
            tx,
            row,
            request=body,
            sla=body["sla"],
            bandwidth_mbps=body["guaranteeBandwidth"],
            max_latency_ms=body.get("maxLatency"),
            plan=specs.plan_to_json(plan),
            allocation=allocation,
            actual=lifecycle.planned_actuals(body["sla"], body["guaranteeBandwidth"], plan.latency_ms),
        )
        await jobs.enqueue(tx, kind="modify", session_id=session_id, now=now)
        await _reserve(tx, ctx, plan, now, held)
        return row

    row = await _retrying_races(ctx, change)
    ctx.work_ready.set()
    return row


async def extend_session(ctx: ServiceContext, *, client_id: str, session_id: str, duration: Mapping[str, Any]) -> SessionRecord:
    """Add time, capped at the configured maximum duration."""
    now = ctx.clock.now()
    async with ctx.database.transaction() as tx:
        row = await owned(tx, client_id, session_id)
        if row.status != Status.AVAILABLE or row.started_at is None:
            raise errors.IncompatibleState(f"the session is {row.status}; only an AVAILABLE session can be extended")
        hours = min(row.duration_hours + duration_hours(duration["value"], duration["unit"]), ctx.settings.max_duration_hours)
        row = await session_store.update(tx, row, duration_hours=hours, expires_at=row.started_at + hours_delta(hours))
        if row.expires_at is not None and row.expires_at <= now:  # capped below the time already served: it ends now
            row = await lifecycle.end(tx, ctx, row, StatusInfo.DURATION_EXPIRED, now)
    return row


async def delete_session(ctx: ServiceContext, *, client_id: str, session_id: str) -> None:
    """Tear the session down; once the network is clean the session is gone (404). One whose
    provisioning no worker began is gone at once (``lifecycle.end``). On PostgreSQL a live
    session is ended in one statement that does the same (``withdrawal``)."""
    now = ctx.clock.now()
    withdrawn = await ctx.withdrawals.withdraw(session_id, client_id, now=now, purge_at=lifecycle.purge_time(ctx, now))
    if withdrawn is not None:
        ctx.work_ready.set()  # its teardown, its sink's event, or both are queued (a wake for neither finds nothing)
        return
    async with ctx.database.transaction() as tx:
        row = await owned(tx, client_id, session_id)
        if row.status in LIVE_STATUSES:
            await lifecycle.end(tx, ctx, row, StatusInfo.DELETE_REQUESTED, now, delete_after=True)
        elif row.status_info != StatusInfo.DELETE_REQUESTED:
            # already ended (expired or terminated): its teardown ran or is queued; forget it
            await session_store.update(tx, row, status_info=StatusInfo.DELETE_REQUESTED, purge_at=now)
    ctx.work_ready.set()
