"""The load creates and changes plan on (``reservations.LoadReader``): what is committed,
a dict of each caller's own, read by one query for many callers on PostgreSQL, and after a
lost race a read newer than the caller."""

from __future__ import annotations

import asyncio
from typing import Any

from s2cvpn.storage import reservations
from s2cvpn.storage.driver import Sql, open_database
from tests.support.databases import CountedReads

_SET = Sql("UPDATE resource_load SET reserved_mbps = :mbps WHERE resource_id = :resource")
_ADD = Sql("INSERT INTO resource_load (resource_id, reserved_mbps) VALUES (:resource, 0)")


async def test_concurrent_reads_share_queries_and_each_gets_its_own_copy(migrated_url: str) -> None:
    database = open_database(migrated_url)
    try:
        async with database.transaction() as tx:
            for resource, mbps in {"link-a": 10, "link-b": 40, "port:idle": 0}.items():
                await tx.execute(_ADD, resource=resource)
                await tx.execute(_SET, resource=resource, mbps=mbps)
        queries = CountedReads(database)
        loads = reservations.LoadReader(database)
        answers = await asyncio.gather(*(loads.current() for _ in range(100)))
        assert all(answer == {"link-a": 10, "link-b": 40} for answer in answers), answers[0]  # sparse: nothing idle
        answers[0]["link-a"] = 999  # a caller adjusts its copy (minus what it holds): the others keep theirs
        assert answers[1]["link-a"] == 10
        if database.dialect == "postgresql":
            assert 1 <= queries.count < len(answers) / 4, queries.count
        else:
            assert queries.count == len(answers)
        # a read that comes after a commit sees it
        async with database.transaction() as tx:
            await tx.execute(_SET, resource="link-b", mbps=5)
        assert await loads.current() == {"link-a": 10, "link-b": 5}

    finally:
        await database.close()


class _HeldAfterFetch:
    """A read whose answer is held back after its query ran (``released``): a read in flight
    with figures older than a commit that comes meanwhile."""

    def __init__(self, reading: Any, fetched: asyncio.Event, released: asyncio.Event) -> None:
        self._reading, self._fetched, self._released = reading, fetched, released

    async def __aenter__(self) -> Any:
        tx = await self._reading.__aenter__()
        fetch = tx.fetch

        async def held_fetch(sql: Any, **params: Any) -> Any:
            rows = await fetch(sql, **params)
            self._fetched.set()
            await self._released.wait()
            return rows

        tx.fetch = held_fetch
        return tx

    async def __aexit__(self, *exc: Any) -> None:
        await self._reading.__aexit__(*exc)


async def test_after_a_lost_race_the_read_is_newer_than_the_one_in_flight(migrated_url: str) -> None:
    """A first attempt may join a read in flight; an attempt after a lost race must not:
    it plans on figures read after it came."""
    database = open_database(migrated_url)
    reading, fetched, released = database.reading, asyncio.Event(), asyncio.Event()
    database.reading = lambda: _HeldAfterFetch(reading(), fetched, released)  # type: ignore[method-assign]
    try:
        async with database.transaction() as tx:
            await tx.execute(_ADD, resource="link-a")
            await tx.execute(_SET, resource="link-a", mbps=5)
        loads = reservations.LoadReader(database)
        in_flight = asyncio.create_task(loads.current())
        await asyncio.wait_for(fetched.wait(), timeout=10)  # its query ran: it read 5
        database.reading = reading  # type: ignore[method-assign]
        async with database.transaction() as tx:
            await tx.execute(_SET, resource="link-a", mbps=7)
        after_race = asyncio.create_task(loads.current(after_race=True))
        await asyncio.sleep(0.05)
        released.set()
        assert await asyncio.wait_for(in_flight, timeout=10) == {"link-a": 5}
        assert await asyncio.wait_for(after_race, timeout=10) == {"link-a": 7}
    finally:
        await database.close()
