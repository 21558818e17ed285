"""Pool slots: one small integer per live session, from which every pool value derives.

The primary key makes a slot unique. A slot is first drawn at random: concurrent creates
then almost never want the same one (on PostgreSQL a second insert of a key that another
open transaction holds would wait for it to commit, serialising creates). When random
draws keep hitting taken slots, the pool is nearly full and the lowest free one is used.
"""

from __future__ import annotations

import random

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from s2cvpn.storage.db import insert_or_skip
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


_TAKE = insert_or_skip(PoolSlotRow.__table__, PoolSlotRow.slot)


async def _insert_slot(db: AsyncSession, slot: int, session_id: str) -> bool:
    """Take ``slot`` unless it is taken: one statement, no savepoint (a duplicate is skipped)."""
    return await db.scalar(_TAKE(db), {"slot": slot, "session_id": session_id}) is not None


async def take_slot(db: AsyncSession, session_id: str, size: int) -> int:
    """Give the session a free slot, in the caller's transaction."""
    for attempt in range(RANDOM_DRAWS + 20):
        slot = random.randrange(size) if attempt < RANDOM_DRAWS else await _lowest_free(db, size)
        if await _insert_slot(db, slot, session_id):
            return slot
    raise PoolExhausted("could not take a resource-pool slot under contention")


_RETURN = delete(PoolSlotRow.__table__).where(PoolSlotRow.__table__.c.session_id == bindparam("session_id"))


async def return_slot(db: AsyncSession, session_id: str) -> None:
    await db.execute(_RETURN, {"session_id": session_id})
