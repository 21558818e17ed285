"""Capacity bookkeeping that never overbooks, on SQLite and PostgreSQL alike.

Each resource (link id or ``port:<attachment>``) has one ``resource_load`` counter. A
reservation is a guarded ``UPDATE ... SET reserved = reserved + :mbps WHERE reserved +
:mbps <= :capacity`` whose rowcount says whether it fitted: PostgreSQL's row lock and
SQLite's ``BEGIN IMMEDIATE`` make concurrent reservations queue on the same row, so the
check and the write are one step. ``reservations`` rows record what each session holds,
so releasing returns exactly that, and "counter == sum of live reservations" holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from s2cvpn.storage.db import insert_or_skip
from s2cvpn.storage.tables import ReservationRow, ResourceLoadRow


class CapacityRace(Exception):
    """A resource filled up between planning and reserving; the caller plans again."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(resource_id)
        self.resource_id = resource_id


LOAD = ResourceLoadRow.__table__
HELD = ReservationRow.__table__
# built once: building a statement costs more CPU than its round trip
_ENSURE = insert_or_skip(LOAD)
_CURRENT_LOAD = select(LOAD.c.resource_id, LOAD.c.reserved_mbps).where(LOAD.c.reserved_mbps > 0)
_HELD_BY = select(HELD.c.resource_id, HELD.c.mbps).where(HELD.c.session_id == bindparam("session"))
_GROW = (
    update(LOAD)
    .where(LOAD.c.resource_id == bindparam("resource"), LOAD.c.reserved_mbps + bindparam("delta") <= bindparam("capacity"))
    .values(reserved_mbps=LOAD.c.reserved_mbps + bindparam("delta"))
)
_SHRINK = update(LOAD).where(LOAD.c.resource_id == bindparam("resource")).values(reserved_mbps=LOAD.c.reserved_mbps - bindparam("delta"))
_FORGET = delete(HELD).where(HELD.c.session_id == bindparam("session"))
_FORGET_HELD = _FORGET.returning(HELD.c.resource_id, HELD.c.mbps)


async def ensure_resources(db: AsyncSession, resource_ids: Iterable[str]) -> None:
    """Create missing counters (idempotent, safe when several replicas start together)."""
    rows = [{"resource_id": rid, "reserved_mbps": 0} for rid in resource_ids]
    for start in range(0, len(rows), 2000):
        await db.execute(_ENSURE(db), rows[start : start + 2000])


async def current_load(db: AsyncSession | AsyncConnection) -> dict[str, int]:
    """Mbps reserved per resource, only where something is reserved (sparse)."""
    return {rid: mbps for rid, mbps in (await db.execute(_CURRENT_LOAD)).all()}


async def held_by(db: AsyncSession, session_id: str) -> dict[str, int]:
    return {rid: mbps for rid, mbps in (await db.execute(_HELD_BY, {"session": session_id})).all()}


async def _grow(db: AsyncSession, resource_id: str, mbps: int, capacity_mbps: int) -> None:
    result = await db.execute(_GROW, {"resource": resource_id, "delta": mbps, "capacity": capacity_mbps})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CapacityRace(resource_id)


async def _shrink(db: AsyncSession, resource_id: str, mbps: int) -> None:
    await db.execute(_SHRINK, {"resource": resource_id, "delta": mbps})


async def set_reservation(
    db: AsyncSession,
    session_id: str,
    demands: Mapping[str, int],
    capacity_of: Callable[[str], int],
    *,
    held: Mapping[str, int] | None = None,
) -> None:
    """Make the session hold exactly ``demands``: grow what grows (guarded), shrink the rest.

    Runs inside the caller's transaction; a ``CapacityRace`` means the caller must roll back.
    Resources are touched in sorted order so concurrent transactions lock rows alike.
    ``held`` is what the session holds now when the caller already read it (``{}`` for a
    session being created), saving the round trips.
    """
    if held is None:
        held = await held_by(db, session_id)
    for resource_id in sorted(set(held) | set(demands)):
        before, after = held.get(resource_id, 0), demands.get(resource_id, 0)
        if after > before:
            await _grow(db, resource_id, after - before, capacity_of(resource_id))
        elif after < before:
            await _shrink(db, resource_id, before - after)
    if held:
        await db.execute(_FORGET, {"session": session_id})
    rows = [{"session_id": session_id, "resource_id": rid, "mbps": mbps} for rid, mbps in demands.items() if mbps > 0]
    if rows:
        await db.execute(insert(HELD), rows)


async def release(db: AsyncSession, session_id: str) -> None:
    """Return everything the session holds (its reservation rows go, telling what to give back). Idempotent."""
    held = dict((await db.execute(_FORGET_HELD, {"session": session_id})).all())
    for resource_id in sorted(held):  # the same order as set_reservation: no lock cycles
        await _shrink(db, resource_id, held[resource_id])
