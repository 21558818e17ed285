"""Pool slots: one small integer per session not yet released, from which every pool value
derives. The slot is a column of the session's row; a partial unique index
(``ux_sessions_held_slot``) makes a held slot unique, so the session's insert is what
takes it (``session_store.insert``) and its release (``released_at`` set, or the row
deleted) what gives it back.

A slot is first drawn at random: concurrent creates then almost never want the same one
(on PostgreSQL an insert of a slot that another open transaction holds would wait for it
to commit, serialising creates). When random draws keep hitting held slots, the pool is
nearly full: the held slots are read once (one index scan) and the free ones tried in
random order, so concurrent creates still spread over what is left.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from s2cvpn.storage.driver import Sql, Transaction
from s2cvpn.storage.tables import HELD_SLOT


T = TypeVar("T")


class PoolExhausted(Exception):
    pass


RANDOM_DRAWS = 8
FREE_TRIES = 20
_HELD = Sql(f"SELECT slot FROM sessions WHERE {HELD_SLOT} AND slot IS NOT NULL")


async def take(tx: Transaction, size: int, try_slot: Callable[[int], Awaitable[T | None]]) -> T:
    """The first answer of ``try_slot`` that is not None (None: that slot is held), trying
    slots one after another; raises ``PoolExhausted`` when they run out. In the caller's
    transaction: each try is one statement (the insert), no savepoint. A loop rather than
    an async generator the caller leaves: the generator left open cost the event loop a
    task to close it, on every create."""
    for _ in range(RANDOM_DRAWS):
        taken = await try_slot(random.randrange(size))
        if taken is not None:
            return taken
    held = {row[0] for row in await tx.fetch(_HELD)}
    free = [slot for slot in range(size) if slot not in held]
    if not free:
        raise PoolExhausted(f"all {size} resource-pool slots are in use")
    for slot in random.sample(free, min(len(free), FREE_TRIES)):
        taken = await try_slot(slot)
        if taken is not None:
            return taken
    raise PoolExhausted("could not take a resource-pool slot under contention")
