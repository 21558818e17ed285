"""Capacity bookkeeping that never overbooks, on SQLite and PostgreSQL alike.

Each resource (link id or ``port:<attachment>``) has one ``resource_load`` counter. A
reservation is a guarded ``UPDATE ... SET reserved = reserved + :mbps WHERE reserved +
:mbps <= :capacity RETURNING`` whose answer says whether it fitted: PostgreSQL's row lock
and SQLite's ``BEGIN IMMEDIATE`` make concurrent reservations queue on the same row, so the
check and the write are one step. A session's changes go as one batch (asyncpg sends it in
one round trip), in sorted order.

What a session holds is its plan's ``demands`` until its network is released
(``SessionRecord.held``): the caller writes the plan in the same transaction as the
counters move, so "counter == sum of what unreleased sessions hold" holds, and releasing
returns exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.storage.db import insert_or_skip
from s2cvpn.storage.coalescing import CoalescedQueries
from s2cvpn.storage.driver import POSTGRES, Database, Sql, Transaction
from s2cvpn.storage.tables import ResourceLoadRow


class CapacityRace(Exception):
    """A resource filled up between planning and reserving; the caller plans again."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(resource_id)
        self.resource_id = resource_id


_ENSURE = insert_or_skip(ResourceLoadRow.__table__)
_CURRENT_LOAD = Sql("SELECT resource_id, reserved_mbps FROM resource_load WHERE reserved_mbps > 0")
# a growth is guarded by the capacity, a shrink always applies; RETURNING says which applied
_ADJUST = Sql(
    "UPDATE resource_load SET reserved_mbps = reserved_mbps + :delta "
    "WHERE resource_id = :resource AND (:delta <= 0 OR reserved_mbps + :delta <= :capacity) RETURNING resource_id"
)
# a release only shrinks: nothing to check, nothing to return (SQLite runs it as one
# executemany, at a third of the guarded statement's cost a row)
_SHRINK = Sql("UPDATE resource_load SET reserved_mbps = reserved_mbps - :mbps WHERE resource_id = :resource")


async def ensure_resources(db: AsyncSession, resource_ids: Iterable[str]) -> None:
    """Create missing counters (idempotent, safe when several replicas start together)."""
    rows = [{"resource_id": rid, "reserved_mbps": 0} for rid in resource_ids]
    for start in range(0, len(rows), 2000):
        await db.execute(_ENSURE(db), rows[start : start + 2000])


async def current_load(tx: Transaction) -> dict[str, int]:
    """Mbps reserved per resource, only where something is reserved (sparse)."""
    return {rid: mbps for rid, mbps in await tx.fetch(_CURRENT_LOAD)}


class LoadReader:
    """The load a create or a change plans on, read before its transaction begins.

    It is a hint, not a promise: the reservation checks every counter again under its lock,
    and a ``CapacityRace`` sends the caller back here. So on PostgreSQL the creates in
    flight share it, and none holds a connection while it waits for it. A first attempt
    joins the read in flight, if there is one: a read that began a moment before it arrived
    is as good a hint as its own. An attempt after a lost race waits for a read that begins
    after it (``coalescing``), so it plans on figures newer than the ones that failed it.
    With 64 connections of create+delete, PostgreSQL ran one load read for about thirty
    creates (bench/HISTORY.md, tenth round)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._newer = CoalescedQueries(self._read, name="s2cvpn-load-reads") if database.dialect == POSTGRES else None
        self._in_flight: asyncio.Future[dict[str, int] | None] | None = None

    async def current(self, *, after_race: bool = False) -> dict[str, int]:
        """Mbps reserved per resource (sparse), a dict of the caller's own."""
        if self._newer is None:
            async with self._database.reading() as tx:
                return await current_load(tx)
        if after_race or self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.ensure_future(self._newer.run(None))
            # retrieved even when every caller waiting for it was cancelled meanwhile
            self._in_flight.add_done_callback(lambda read: read.cancelled() or read.exception())
        return dict(await asyncio.shield(self._in_flight) or {})

    async def _read(self, _keys: tuple[None, ...]) -> dict[None, dict[str, int]]:
        async with self._database.reading() as tx:
            return {None: await current_load(tx)}


def held_by(sessions: str) -> str:
    """SQL (PostgreSQL): the Mbps that the rows of ``sessions`` (a CTE with a ``plan``
    column) hold together, per resource (``resource_id``, ``mbps``). What a session holds
    is its plan's demands (``SessionRecord.held``), until its network is released."""
    return (
        f"SELECT demand.key AS resource_id, sum(demand.value::bigint) AS mbps"
        f" FROM {sessions}, json_each_text({sessions}.plan -> 'demands') AS demand GROUP BY demand.key"
    )


def counter_changes(held: Mapping[str, int], demands: Mapping[str, int], capacity_of: Callable[[str], int]) -> list[dict[str, Any]]:
    """What moving from ``held`` to ``demands`` does to each counter, in sorted order: its
    ``delta`` and, for a growth, the ``capacity`` it must stay within."""
    return [
        {"resource": rid, "delta": delta, "capacity": capacity_of(rid) if delta > 0 else 0}
        for rid in sorted(set(held) | set(demands))
        if (delta := demands.get(rid, 0) - held.get(rid, 0))
    ]


async def reserve(tx: Transaction, held: Mapping[str, int], demands: Mapping[str, int], capacity_of: Callable[[str], int]) -> None:
    """Move the counters from what a session holds (``{}`` for a new one) to what it now
    demands: grow what grows (guarded), shrink the rest.

    Runs inside the caller's transaction, which records ``demands`` as the session's plan; a
    ``CapacityRace`` means the caller must roll back. Resources are touched in sorted order
    so concurrent transactions lock rows alike.
    """
    changes = counter_changes(held, demands, capacity_of)
    if changes:  # one batch (one round trip on PostgreSQL), rows locked in sorted order
        applied = {row[0] for row in await tx.fetch_many(_ADJUST, changes)}
        for change in changes:
            if change["delta"] > 0 and change["resource"] not in applied:
                raise CapacityRace(change["resource"])


async def release(tx: Transaction, held: Mapping[str, int]) -> None:
    """Give back what a session held; the caller marks it released in the same transaction."""
    if held:  # one batch of shrinks, in the same order as reserve: no lock cycles
        await tx.execute_many(_SHRINK, [{"resource": rid, "mbps": held[rid]} for rid in sorted(held)])
