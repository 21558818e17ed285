"""Making the network follow the database: the job handlers (provision, modify,
teardown), the expiry and purge sweeps, and reconciliation.

Every handler is idempotent: drivers apply and remove idempotently, and each state
change is guarded by the state it expects, so a job run twice (after a worker died
holding its lease) does no harm.

Prometheus counters live here, where the work happens (each process exposes its own; sum
them over replicas): ``s2cvpn_driver_calls_total{op, cause}`` counts driver calls that
succeeded (``cause`` is ``job`` or ``reconcile``), ``s2cvpn_driver_failures_total{op}``
the ones that raised, ``s2cvpn_sessions_expired_total`` the sessions this process ended
at their time, ``s2cvpn_sessions_purged_total`` the ones it forgot after retention.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from sqlalchemy import bindparam, select

from s2cvpn.domain.session import LIVE_STATUSES, Status, StatusInfo
from s2cvpn.drivers.base import call_driver
from s2cvpn.errors import DriverError
from s2cvpn.service import lifecycle, specs
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import jobs as job_store
from s2cvpn.storage import events as event_store
from s2cvpn.storage import idempotency, session_store, token_failures
from s2cvpn.storage.driver import Transaction
from s2cvpn.storage.session_store import SessionRecord
from s2cvpn.storage.jobs import ClaimedJob
from s2cvpn.storage.tables import JobRow, SessionRow

log = logging.getLogger(__name__)
SWEEP_BATCH = 200
PURGE_BATCH = 1000
RECONCILE_BATCH = 500
IDEMPOTENCY_KEEP = timedelta(hours=25)
EVENTS_KEEP = timedelta(hours=24)

DRIVER_CALLS = Counter("s2cvpn_driver_calls", "Network driver calls that succeeded", ["op", "cause"])
DRIVER_FAILURES = Counter("s2cvpn_driver_failures", "Network driver calls that raised", ["op"])
EXPIRED = Counter("s2cvpn_sessions_expired", "Sessions ended at their expiry time by this process")
PURGED = Counter("s2cvpn_sessions_purged", "Ended sessions forgotten after their retention by this process")


async def _driver(ctx: ServiceContext, op: str, *args: Any, cause: str = "job") -> Any:
    """``ctx.driver.<op>(*args)`` through ``call_driver``, counted by operation."""
    try:
        result = await call_driver(ctx.driver, op, *args)
    except Exception:
        DRIVER_FAILURES.labels(op).inc()
        raise
    DRIVER_CALLS.labels(op, cause).inc()
    return result


async def _read(ctx: ServiceContext, session_id: str) -> SessionRecord | None:
    async with ctx.database.reading() as tx:
        return await session_store.get(tx, session_id)


class HeldJob:
    """A job as its handler sees it: leased to ``worker_id``. The handler ends it with
    ``done`` inside its last transaction, so the state change and the end of the job commit
    together and the job costs no transaction of its own; the worker reads ``finished``
    (None: the handler did not end it) and ``withdrawn`` afterwards."""

    __slots__ = ("job", "worker_id", "finished", "withdrawn")

    def __init__(self, job: ClaimedJob, worker_id: str) -> None:
        self.job = job
        self.worker_id = worker_id
        self.finished: bool | None = None
        self.withdrawn = False  # the job was no longer the worker's when its work was to begin

    async def done(self, tx: Transaction) -> None:
        """Delete the job's row, while this worker still holds its lease."""
        self.finished = await job_store.finish(tx, self.job.job_id, self.worker_id)


async def provision(ctx: ServiceContext, held: HeldJob) -> None:
    session_id = held.job.session_id
    assert session_id is not None
    # begun before the network is touched: from here on a delete tears the session down
    async with ctx.database.autocommit() as tx:
        begun, row = await session_store.begin_job(tx, session_id, job_id=held.job.job_id, worker_id=held.worker_id, now=ctx.clock.now())
    if not begun:
        held.withdrawn = True
        return
    if row is None or row.status != Status.REQUESTED:
        return
    spec = specs.service_spec(row)
    await _driver(ctx, "apply", spec)
    now = ctx.clock.now()
    async with ctx.database.transaction() as tx:
        if await lifecycle.start(tx, ctx, row, now) is not None:
            await held.done(tx)
            return
        row = await session_store.get(tx, session_id, lock=True)
        torn_down = row is None or row.released_at is not None
    # ended meanwhile: a teardown still queued removes what we built; one that already ran
    # (on another worker, during our driver call) cannot have, so remove it here
    if torn_down:
        await _driver(ctx, "remove", session_id)


async def modify(ctx: ServiceContext, session_id: str) -> None:
    row = await _read(ctx, session_id)
    if row is None or row.status != Status.AVAILABLE:
        return
    await _driver(ctx, "modify", specs.service_spec(row))


async def teardown(ctx: ServiceContext, held: HeldJob) -> None:
    session_id = held.job.session_id
    assert session_id is not None
    delete_after = bool(held.job.payload.get("delete"))  # deleted through the API
    await _driver(ctx, "remove", session_id)
    now = ctx.clock.now()
    async with ctx.database.transaction() as tx:
        await held.done(tx)
        # a second run finds the row gone, or released: what it held was given back then
        if delete_after:  # deleted through the API: the row goes in one statement, which says what it held
            holding = await session_store.delete_holding(tx, session_id)
            if holding is None:
                return
        else:
            row = await session_store.get(tx, session_id, lock=True)
            if row is None:
                return
            if row.status_info == StatusInfo.DELETE_REQUESTED:  # deleted through the API after it ended
                await session_store.delete(tx, session_id)
            else:
                await session_store.update(tx, row, released_at=now)
            holding = row.held  # nothing, for a released row
        await lifecycle.release_network(tx, holding)


async def give_up(ctx: ServiceContext, job: ClaimedJob, error: str) -> None:
    """The retry budget is spent: a session that never came up is NETWORK_TERMINATED."""
    log.error("job %s (%s) for session %s failed for good: %s", job.job_id, job.kind, job.session_id, error)
    if job.kind not in ("provision", "modify") or job.session_id is None:
        return
    now = ctx.clock.now()
    async with ctx.database.transaction() as tx:
        row = await session_store.get(tx, job.session_id, lock=True)
        if row is not None and row.status in LIVE_STATUSES:
            await lifecycle.end(tx, ctx, row, StatusInfo.NETWORK_TERMINATED, now)


async def run_job(ctx: ServiceContext, held: HeldJob) -> None:
    """Run the job's handler; it calls ``held.done`` in its last transaction, unless it had
    nothing to write (the caller then ends the job on its own) or the job was withdrawn."""
    job = held.job
    assert job.session_id is not None
    if job.kind == "provision":
        await provision(ctx, held)
    elif job.kind == "modify":
        await modify(ctx, job.session_id)
    elif job.kind == "teardown":
        await teardown(ctx, held)
    else:
        raise ValueError(f"unknown job kind {job.kind!r}")


async def expire_due(ctx: ServiceContext) -> int:
    """End every AVAILABLE session whose time is up; the index makes this cost what is due."""
    now = ctx.clock.now()
    ended = 0
    # the worker sweeps after every batch of jobs, and almost always finds nothing: a plain
    # read says so without the write transaction (on SQLite, the database's one write lock)
    async with ctx.database.reading() as tx:
        if not await session_store.any_expired(tx, now):
            return 0
    async with ctx.database.transaction() as tx:
        for row in await session_store.lock_expired(tx, now, SWEEP_BATCH):
            await lifecycle.end(tx, ctx, row, StatusInfo.DURATION_EXPIRED, now)
            ended += 1
    EXPIRED.inc(ended)  # after the commit: only expiries that happened are counted
    return ended


async def next_expiry(ctx: ServiceContext) -> datetime | None:
    async with ctx.database.reading() as tx:
        return await session_store.next_expiry(tx)


async def purge_due(ctx: ServiceContext) -> int:
    """Forget ended sessions past their retention, once the network is clean (and the
    idempotency keys, finished notifications and token-endpoint failures that have aged out).

    On the driver's path, as every write the worker makes under load: on SQLite an ORM
    transaction holds the database's one write lock for as long as its thread takes to
    answer, several turns of a busy event loop, and every write of the API waited for it
    (``bench/HISTORY.md``, sixteenth round). Sessions go in batches, each its own transaction."""
    now = ctx.clock.now()
    purged = 0
    while True:
        async with ctx.database.transaction() as tx:
            batch = await session_store.purge(tx, now, PURGE_BATCH)
        purged += batch
        if batch < PURGE_BATCH:
            break
    async with ctx.database.transaction() as tx:
        await idempotency.forget_older(tx, now - IDEMPOTENCY_KEEP)
        await token_failures.prune(tx, now)
        await event_store.forget_finished(tx, now - EVENTS_KEEP)
    PURGED.inc(purged)
    return purged


async def reconcile(ctx: ServiceContext) -> dict[str, int]:
    """Compare what should exist with what the network holds, and mend the difference.

    The database side is read in keyset batches of ``RECONCILE_BATCH`` ids, and full rows
    only for the sessions to re-apply: with a million sessions held, a pass reads ids, not a
    million rows at once."""
    held = await _driver(ctx, "list_services", cause="reconcile")
    # the reads take no transaction (``read_db``): on SQLite an ORM transaction takes the
    # write lock, and the API's writes would wait for every batch
    async with ctx.read_db() as connection:
        pending = set((await connection.scalars(select(JobRow.session_id).where(JobRow.session_id.is_not(None)))).all())
    counts = {"reapplied": 0, "removed": 0, "terminated": 0}
    after = ""
    while True:
        async with ctx.read_db() as connection:
            ids = list((await connection.scalars(_AVAILABLE_IDS, {"after": after, "limit": RECONCILE_BATCH})).all())
        missing = [session_id for session_id in ids if session_id not in held and session_id not in pending]
        rows: list[SessionRow] = []
        if missing:  # the network lost them: full rows, to build them again
            async with ctx.db() as db:
                rows = list((await db.scalars(select(SessionRow).where(SessionRow.session_id.in_(missing)))).all())
        for row in rows:
            if row.status == Status.AVAILABLE:
                await _reapply(ctx, row, counts)
        if len(ids) < RECONCILE_BATCH:
            break
        after = ids[-1]
    unowned = sorted(held - pending)  # held for a session the database no longer has live
    for start in range(0, len(unowned), RECONCILE_BATCH):
        batch = unowned[start : start + RECONCILE_BATCH]
        async with ctx.read_db() as connection:
            live = set(
                (await connection.scalars(select(SessionRow.session_id).where(SessionRow.session_id.in_(batch), SessionRow.released_at.is_(None)))).all()
            )
        for session_id in batch:
            if session_id not in live:
                await _driver(ctx, "remove", session_id, cause="reconcile")
                counts["removed"] += 1
    return counts


_AVAILABLE_IDS = (
    select(SessionRow.session_id)
    .where(SessionRow.status == Status.AVAILABLE, SessionRow.session_id > bindparam("after"))
    .order_by(SessionRow.session_id)
    .limit(bindparam("limit"))
)


async def _reapply(ctx: ServiceContext, row: SessionRow, counts: dict[str, int]) -> None:
    """Build an AVAILABLE session the network lost; one it cannot carry any more ends."""
    try:
        await _driver(ctx, "apply", specs.service_spec(row), cause="reconcile")
        counts["reapplied"] += 1
    except DriverError as exc:
        log.error("reconcile: session %s cannot be carried any more: %s", row.session_id, exc)
        now = ctx.clock.now()
        async with ctx.database.transaction() as tx:
            locked = await session_store.get(tx, row.session_id, lock=True)
            if locked is not None and locked.status == Status.AVAILABLE:
                await lifecycle.end(tx, ctx, locked, StatusInfo.NETWORK_TERMINATED, now)
                counts["terminated"] += 1
