"""Pool slots: one small integer per session not yet released, from which every pool value
derives. The slot is a column of the session's row; a partial unique index
(``ux_sessions_held_slot``) makes a held slot unique, so the session's insert is what
takes it (``session_store.insert``) and its release (``released_at`` set, or the row
deleted) what gives it back.

A slot is first drawn at random: concurrent creates then almost never want the same one
(on PostgreSQL an insert of a slot that another open transaction holds would wait for it
to commit, serialising creates). When random draws keep hitting held slots, the pool is
nearly full and the lowest free one is used.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

from s2cvpn.storage.driver import Sql, Transaction
from s2cvpn.storage.tables import HELD_SLOT


class PoolExhausted(Exception):
    pass


RANDOM_DRAWS = 8
_ZERO_HELD = Sql(f"SELECT 1 FROM sessions WHERE slot = 0 AND {HELD_SLOT}")
_FIRST_GAP = Sql(
    "SELECT held.slot + 1 FROM sessions AS held LEFT OUTER JOIN sessions AS next "
    f"ON next.slot = held.slot + 1 AND next.{HELD_SLOT} "
    f"WHERE held.{HELD_SLOT} AND held.slot IS NOT NULL AND next.slot IS NULL ORDER BY held.slot LIMIT 1"
)


async def _lowest_free(tx: Transaction, size: int) -> int:
    if await tx.fetchrow(_ZERO_HELD) is None:
        return 0
    gap = await tx.fetchval(_FIRST_GAP)
    if gap is None or gap >= size:
        raise PoolExhausted(f"all {size} resource-pool slots are in use")
    return int(gap)


async def candidate_slots(tx: Transaction, size: int) -> AsyncIterator[int]:
    """Slots to try, one after another, until the caller's insert takes one; raises
    ``PoolExhausted`` when they run out. In the caller's transaction: each try is one
    statement (the insert), no savepoint."""
    for attempt in range(RANDOM_DRAWS + 20):
        yield random.randrange(size) if attempt < RANDOM_DRAWS else await _lowest_free(tx, size)
    raise PoolExhausted("could not take a resource-pool slot under contention")
