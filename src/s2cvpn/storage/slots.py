"""Pool slots: one small integer per live session, from which every pool value derives.

The primary key makes a slot unique. A slot is first drawn at random: concurrent creates
then almost never want the same one (on PostgreSQL a second insert of a key that another
open transaction holds would wait for it to commit, serialising creates). When random
draws keep hitting taken slots, the pool is nearly full and the lowest free one is used.
"""

from __future__ import annotations

import random

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from s2cvpn.storage.tables import PoolSlotRow


class PoolExhausted(Exception):
    pass


async def _lowest_free(db: AsyncSession, size: int) -> int:
    first = await db.scalar(select(PoolSlotRow.slot).where(PoolSlotRow.slot == 0))
    if first is None:
        return 0
    nxt = aliased(PoolSlotRow)
    gap = await db.scalar(
        select(PoolSlotRow.slot + 1)
        .outerjoin(nxt, nxt.slot == PoolSlotRow.slot + 1)
        .where(nxt.slot.is_(None))
        .order_by(PoolSlotRow.slot)
        .limit(1)
    )
    if gap is None or gap >= size:
        raise PoolExhausted(f"all {size} resource-pool slots are in use")
    return int(gap)


RANDOM_DRAWS = 8


async def take_slot(db: AsyncSession, session_id: str, size: int) -> int:
    """Give the session a free slot, in the caller's transaction."""
    for attempt in range(RANDOM_DRAWS + 20):
        slot = random.randrange(size) if attempt < RANDOM_DRAWS else await _lowest_free(db, size)
        if attempt < RANDOM_DRAWS and await db.get(PoolSlotRow, slot) is not None:
            continue
        try:
            async with db.begin_nested():
                db.add(PoolSlotRow(slot=slot, session_id=session_id))
                await db.flush()
            return slot
        except IntegrityError:  # another transaction took it first
            continue
    raise PoolExhausted("could not take a resource-pool slot under contention")


async def return_slot(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(PoolSlotRow).where(PoolSlotRow.session_id == session_id))
