"""Pool slots: one small integer per live session, from which every pool value derives.

The primary key makes a slot unique. A slot is first drawn at random: concurrent creates
then almost never want the same one (on PostgreSQL a second insert of a key that another
open transaction holds would wait for it to commit, serialising creates). When random
draws keep hitting taken slots, the pool is nearly full and the lowest free one is used.
"""

from __future__ import annotations

import random

from s2cvpn.storage.driver import Sql, Transaction


class PoolExhausted(Exception):
    pass


RANDOM_DRAWS = 8
_TAKE = Sql("INSERT INTO pool_slots (slot, session_id) VALUES (:slot, :session) ON CONFLICT DO NOTHING RETURNING slot")
_RETURN = Sql("DELETE FROM pool_slots WHERE session_id = :session")
_ZERO_TAKEN = Sql("SELECT 1 FROM pool_slots WHERE slot = 0")
_FIRST_GAP = Sql(
    "SELECT taken.slot + 1 FROM pool_slots AS taken LEFT OUTER JOIN pool_slots AS next ON next.slot = taken.slot + 1 "
    "WHERE next.slot IS NULL ORDER BY taken.slot LIMIT 1"
)


async def _lowest_free(tx: Transaction, size: int) -> int:
    if await tx.fetchrow(_ZERO_TAKEN) is None:
        return 0
    gap = await tx.fetchval(_FIRST_GAP)
    if gap is None or gap >= size:
        raise PoolExhausted(f"all {size} resource-pool slots are in use")
    return int(gap)


async def take_slot(tx: Transaction, session_id: str, size: int) -> int:
    """Give the session a free slot, in the caller's transaction: each try is one
    statement, no savepoint (a taken slot is skipped)."""
    for attempt in range(RANDOM_DRAWS + 20):
        slot = random.randrange(size) if attempt < RANDOM_DRAWS else await _lowest_free(tx, size)
        if await tx.fetchrow(_TAKE, slot=slot, session=session_id) is not None:
            return slot
    raise PoolExhausted("could not take a resource-pool slot under contention")


async def return_slot(tx: Transaction, session_id: str) -> None:
    await tx.execute(_RETURN, session=session_id)
