"""A running service tunes the cyclic garbage collector (start-up objects frozen, the
youngest generation collected less often) and gives the process its settings back."""

from __future__ import annotations

import asyncio
import gc

from s2cvpn.bootstrap import YOUNG_GENERATION_THRESHOLD, open_context
from s2cvpn.config import Settings


def test_the_collector_is_tuned_while_the_service_runs_and_restored_after(fresh_database_url: str) -> None:
    before = gc.get_threshold()
    assert before[0] != YOUNG_GENERATION_THRESHOLD

    async def running() -> tuple[tuple[int, int, int], int]:
        async with open_context(Settings(database_url=fresh_database_url)):
            return gc.get_threshold(), gc.get_freeze_count()

    during, frozen = asyncio.run(running())
    assert during == (YOUNG_GENERATION_THRESHOLD, *before[1:])
    assert frozen > 10_000  # modules, the inventory and its graph
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
