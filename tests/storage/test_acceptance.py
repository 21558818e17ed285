"""A new session's acceptance (``acceptance.Acceptances``) on both databases, outside a
transaction as the service runs it (``Database.autocommit``: one statement that commits
alone on PostgreSQL, shared by the acceptances in flight: ``test_batched_writes``): all of it is written, or none of it; concurrent acceptances never
overbook a counter; and one that wants the slot of a session being deleted waits for the
delete without a deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from s2cvpn.storage import acceptance, reservations, session_store
from s2cvpn.storage.driver import Database, Sql, UniqueViolation
from tests.support.acceptances import accept, database_with_counters, planned_session
from tests.support.records import stored_session

_COUNTERS = Sql("SELECT resource_id, reserved_mbps FROM resource_load")
_JOBS = Sql("SELECT kind, session_id, attempts FROM jobs ORDER BY session_id")
_KEYS = Sql("SELECT client_id, key, session_id FROM idempotency_keys ORDER BY session_id")


@pytest.fixture
async def database(migrated_url: str) -> AsyncIterator[Database]:
    async with database_with_counters(migrated_url) as database:
        yield database


@pytest.fixture
def acceptances(database: Database) -> acceptance.Acceptances:
    """One for the test, as the service has one: concurrent acceptances share statements."""
    return acceptance.Acceptances(database)


async def _state(database: Database) -> tuple[dict[str, int], list[tuple], list[tuple], list[str]]:
    """Counters, jobs, keys and stored session ids."""
    async with database.reading() as tx:
        counters = {row[0]: row[1] for row in await tx.fetch(_COUNTERS)}
        found = [tuple(row) for row in await tx.fetch(_JOBS)]
        keys = [tuple(row) for row in await tx.fetch(_KEYS)]
        stored = [row[0] for row in await tx.fetch(Sql("SELECT session_id FROM sessions ORDER BY session_id"))]
    return counters, found, keys, stored


async def test_an_accepted_session_has_its_row_job_key_and_capacity(database: Database, acceptances: acceptance.Acceptances) -> None:
    first = planned_session(1, slot=3, demands={"port:x": 30, "link-a": 200})
    first = replace(first, request={**first.request, "serviceName": "nul \x00 and \u00e9"})  # JSON keeps them both
    assert await accept(acceptances, database, first, key="k-1")
    counters, found, keys, stored = await _state(database)
    assert counters == {"link-a": 200, "port:x": 30}
    assert found == [("provision", first.session_id, 0)]
    assert keys == [("alice", "k-1", first.session_id)]
    async with database.reading() as tx:
        assert await session_store.get(tx, first.session_id) == first
    # without a key, none is written
    assert await accept(acceptances, database, planned_session(2, slot=4, demands={"port:x": 10}))
    assert len((await _state(database))[2]) == 1


async def test_a_held_slot_writes_nothing(database: Database, acceptances: acceptance.Acceptances) -> None:
    assert await accept(acceptances, database, planned_session(1, slot=5, demands={"port:x": 10}), key="k-1")
    before = await _state(database)
    assert not await accept(acceptances, database, planned_session(2, slot=5, demands={"port:x": 10}), key="k-2")
    assert await _state(database) == before


async def test_a_full_counter_writes_nothing(database: Database, acceptances: acceptance.Acceptances) -> None:
    assert await accept(acceptances, database, planned_session(1, slot=1, demands={"port:x": 90}))
    before = await _state(database)
    with pytest.raises(reservations.CapacityRace) as raced:
        await accept(acceptances, database, planned_session(2, slot=2, demands={"link-a": 10, "port:x": 20}), key="k-2")
    assert raced.value.resource_id == "port:x"
    assert await _state(database) == before
    # a resource with no counter (unknown to the inventory) has no room either
    with pytest.raises(reservations.CapacityRace):
        await accept(acceptances, database, planned_session(3, slot=3, demands={"link-unknown": 1}))
    assert await _state(database) == before


async def test_a_live_twin_writes_nothing(database: Database, acceptances: acceptance.Acceptances) -> None:
    assert await accept(acceptances, database, planned_session(1, slot=1, demands={"port:x": 10}))
    before = await _state(database)
    twin = replace(planned_session(2, slot=2, demands={"port:x": 10}), dedup_key=stored_session(1).dedup_key)
    with pytest.raises(UniqueViolation):
        await accept(acceptances, database, twin, key="k-2")
    assert await _state(database) == before


async def test_concurrent_acceptances_never_overbook(database: Database, acceptances: acceptance.Acceptances) -> None:
    """30 sessions of 10 Mbps race for a 100 Mbps port: exactly 10 are accepted, and the
    counter holds exactly theirs."""

    async def one(n: int) -> bool:
        try:
            return await accept(acceptances, database, planned_session(n, slot=n, demands={"port:x": 10, "link-a": 5}))
        except reservations.CapacityRace:
            return False

    results = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(30))), timeout=30)
    counters, found, _keys, stored = await _state(database)
    assert sum(results) == 10
    assert counters == {"port:x": 100, "link-a": 50}
    assert len(found) == len(stored) == 10


async def test_the_slot_of_a_session_being_deleted_is_waited_for_without_a_deadlock(database: Database, acceptances: acceptance.Acceptances) -> None:
    """A delete removes its row (its slot is held until it commits), then gives back its
    capacity; an acceptance of the same slot on the same counters meanwhile waits for it,
    then takes the slot. Locking the counters before the slot would deadlock here
    (PostgreSQL would abort one of the two after a second)."""
    first = planned_session(1, slot=7, demands={"port:x": 40})
    assert await accept(acceptances, database, first)
    row_gone = asyncio.Event()

    async def delete_first() -> None:
        async with database.transaction() as tx:
            held = await session_store.delete_holding(tx, first.session_id)
            row_gone.set()
            await asyncio.sleep(0.3)  # the acceptance below now waits for this transaction
            assert held == {"port:x": 40}
            await reservations.release(tx, held)

    async def accept_second() -> bool:
        await row_gone.wait()
        return await accept(acceptances, database, planned_session(2, slot=7, demands={"port:x": 40}))

    _, accepted = await asyncio.wait_for(asyncio.gather(delete_first(), accept_second()), timeout=20)
    assert accepted
    counters, found, _keys, stored = await _state(database)
    assert counters["port:x"] == 40
    assert stored == [stored_session(2).session_id]
