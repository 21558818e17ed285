"""What the sessions row itself refuses, on both databases: a pool slot that another
session holds until it is released (``ux_sessions_held_slot``), and the duplicate key of
a live session (``ux_sessions_live_dedup_key``); and how ``slots.take`` finds
a free slot, the last one, or none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from s2cvpn.storage import session_store, slots
from s2cvpn.storage.driver import Database, Transaction, UniqueViolation, open_database
from s2cvpn.storage.session_store import SessionRecord
from tests.support.records import stored_session

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
async def database(migrated_url: str) -> AsyncIterator[Database]:
    database = open_database(migrated_url)
    yield database
    await database.close()


def _session(n: int, *, slot: int, key: str | None = None) -> SessionRecord:
    return replace(stored_session(n, slot=slot), dedup_key=key or f"key-{n}")


async def _stored(database: Database, record: SessionRecord) -> SessionRecord | None:
    async with database.reading() as tx:
        return await session_store.get(tx, record.session_id)


async def test_a_held_slot_is_refused_until_its_session_is_released(database: Database) -> None:
    first = _session(1, slot=5)
    async with database.transaction() as tx:
        assert await session_store.insert(tx, first)
    second = _session(2, slot=5)
    async with database.transaction() as tx:
        assert not await session_store.insert(tx, second)
    assert await _stored(database, second) is None
    async with database.transaction() as tx:  # ended, but its network not yet torn down: still held
        ended = await session_store.update(tx, first, status="UNAVAILABLE")
        assert not await session_store.insert(tx, second)
    async with database.transaction() as tx:
        await session_store.update(tx, ended, released_at=NOW)
        assert await session_store.insert(tx, second)
    assert await _stored(database, second) == second


async def test_a_deleted_session_gives_its_slot_back(database: Database) -> None:
    async with database.transaction() as tx:
        assert await session_store.insert(tx, _session(1, slot=7))
        await session_store.delete(tx, _session(1, slot=7).session_id)
        assert await session_store.insert(tx, _session(2, slot=7))


async def test_a_live_twin_is_a_unique_violation_and_an_ended_one_is_not(database: Database) -> None:
    first = _session(1, slot=1, key="twin")
    async with database.transaction() as tx:
        assert await session_store.insert(tx, first)
    with pytest.raises(UniqueViolation):
        async with database.transaction() as tx:
            await session_store.insert(tx, _session(2, slot=2, key="twin"))
    async with database.transaction() as tx:
        assert await session_store.has_live_twin(tx, "twin")
        available = await session_store.update(tx, first, status="AVAILABLE")
    with pytest.raises(UniqueViolation):
        async with database.transaction() as tx:
            await session_store.insert(tx, _session(2, slot=2, key="twin"))
    async with database.transaction() as tx:
        await session_store.update(tx, available, status="UNAVAILABLE")
        assert not await session_store.has_live_twin(tx, "twin")
        assert await session_store.insert(tx, _session(2, slot=2, key="twin"))


async def _place(tx: Transaction, n: int, size: int) -> int:
    async def insert_in(slot: int) -> int | None:
        return slot if await session_store.insert(tx, _session(n, slot=slot)) else None

    return await slots.take(tx, size, insert_in)


async def test_slots_fill_the_pool_then_refuse(database: Database) -> None:
    size = 4
    async with database.transaction() as tx:
        taken = [await _place(tx, n, size) for n in range(size)]
    assert sorted(taken) == list(range(size))
    with pytest.raises(slots.PoolExhausted):
        async with database.transaction() as tx:
            await _place(tx, size, size)


async def test_without_random_draws_the_free_slots_are_tried(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A nearly full pool: what is left is found in one read, and a released slot is free again."""
    monkeypatch.setattr(slots, "RANDOM_DRAWS", 0)
    async with database.transaction() as tx:
        for n, slot in enumerate((1, 2, 4)):
            assert await session_store.insert(tx, _session(n, slot=slot))
        assert sorted([await _place(tx, n, 6) for n in (10, 11, 12)]) == [0, 3, 5]
        with pytest.raises(slots.PoolExhausted, match="all 6"):
            await _place(tx, 13, 6)
        await session_store.update(tx, _session(1, slot=2), released_at=NOW)
        assert await _place(tx, 14, 6) == 2


async def test_free_slots_taken_meanwhile_are_skipped(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each try is an insert that another session's slot refuses: the next free one is tried."""
    monkeypatch.setattr(slots, "RANDOM_DRAWS", 0)
    async with database.transaction() as tx:
        tries: list[int] = []

        async def taken_meanwhile(slot: int) -> int | None:
            tries.append(slot)
            if len(tries) < 4:
                assert await session_store.insert(tx, _session(len(tries), slot=slot))
                return None  # as if a concurrent create had taken it: ask for another
            return slot

        assert await slots.take(tx, 4, taken_meanwhile) == tries[-1]
        assert sorted(tries) == [0, 1, 2, 3]
