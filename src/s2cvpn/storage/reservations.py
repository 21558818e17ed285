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

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from s2cvpn.storage.tables import ReservationRow, ResourceLoadRow


class CapacityRace(Exception):
    """A resource filled up between planning and reserving; the caller plans again."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(resource_id)
        self.resource_id = resource_id


async def ensure_resources(db: AsyncSession, resource_ids: Iterable[str]) -> None:
    """Create missing counters (idempotent, safe when several replicas start together)."""
    rows = [{"resource_id": rid, "reserved_mbps": 0} for rid in resource_ids]
    if not rows:
        return
    dialect = db.bind.dialect.name if db.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), 2000):
        statement = insert(ResourceLoadRow).values(rows[start : start + 2000]).on_conflict_do_nothing()
        await db.execute(statement)


async def current_load(db: AsyncSession | AsyncConnection) -> dict[str, int]:
    """Mbps reserved per resource, only where something is reserved (sparse)."""
    result = await db.execute(
        select(ResourceLoadRow.resource_id, ResourceLoadRow.reserved_mbps).where(ResourceLoadRow.reserved_mbps > 0)
    )
    return {rid: mbps for rid, mbps in result.all()}


async def held_by(db: AsyncSession, session_id: str) -> dict[str, int]:
    result = await db.execute(
        select(ReservationRow.resource_id, ReservationRow.mbps).where(ReservationRow.session_id == session_id)
    )
    return {rid: mbps for rid, mbps in result.all()}


async def _grow(db: AsyncSession, resource_id: str, mbps: int, capacity_mbps: int) -> None:
    result = await db.execute(
        update(ResourceLoadRow)
        .where(ResourceLoadRow.resource_id == resource_id, ResourceLoadRow.reserved_mbps + mbps <= capacity_mbps)
        .values(reserved_mbps=ResourceLoadRow.reserved_mbps + mbps)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CapacityRace(resource_id)


async def _shrink(db: AsyncSession, resource_id: str, mbps: int) -> None:
    await db.execute(
        update(ResourceLoadRow)
        .where(ResourceLoadRow.resource_id == resource_id)
        .values(reserved_mbps=ResourceLoadRow.reserved_mbps - mbps)
    )


async def set_reservation(
    db: AsyncSession,
    session_id: str,
    demands: Mapping[str, int],
    capacity_of: Callable[[str], int],
) -> None:
    """Make the session hold exactly ``demands``: grow what grows (guarded), shrink the rest.

    Runs inside the caller's transaction; a ``CapacityRace`` means the caller must roll back.
    Resources are touched in sorted order so concurrent transactions lock rows alike.
    """
    held = await held_by(db, session_id)
    for resource_id in sorted(set(held) | set(demands)):
        before, after = held.get(resource_id, 0), demands.get(resource_id, 0)
        if after > before:
            await _grow(db, resource_id, after - before, capacity_of(resource_id))
        elif after < before:
            await _shrink(db, resource_id, before - after)
    await db.execute(delete(ReservationRow).where(ReservationRow.session_id == session_id))
    if demands:
        db.add_all(ReservationRow(session_id=session_id, resource_id=rid, mbps=mbps) for rid, mbps in demands.items() if mbps > 0)
    await db.flush()


async def release(db: AsyncSession, session_id: str) -> None:
    """Return everything the session holds. Idempotent."""
    await set_reservation(db, session_id, {}, lambda _rid: 0)
