"""Writes that share one statement on PostgreSQL (``acceptance.Acceptances``,
``withdrawal.Withdrawals``): the creates, or the deletes, that arrive while a statement
runs go together in the next one, and each gets the outcome it would have had alone, even
when the statement of all of them is undone (a full counter, a live twin, a deadlock).

To gather a batch for certain, a first write is held back: it wants a slot (or a row) that
another transaction holds, and the writes that arrive meanwhile wait for the next statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from s2cvpn.storage import acceptance, migrate, reservations, session_store, withdrawal
from s2cvpn.storage.acceptance import Acceptances
from s2cvpn.storage.driver import Database, PostgresTransaction, Sql, UniqueViolation, json_value, parse_time
from s2cvpn.storage.session_store import SessionRecord
from s2cvpn.storage.withdrawal import Withdrawals, Withdrawn
from tests.support.acceptances import accept, database_with_counters, planned_session

pytestmark = pytest.mark.postgres
_COUNTERS = Sql("SELECT resource_id, reserved_mbps FROM resource_load")
_JOBS = Sql("SELECT session_id FROM jobs WHERE kind = 'provision' ORDER BY session_id")
_KEYS = Sql("SELECT key, session_id FROM idempotency_keys ORDER BY key")
_SESSIONS = Sql("SELECT session_id FROM sessions ORDER BY session_id")
_BEGIN = Sql("UPDATE jobs SET begun_at = created_at WHERE session_id = :session")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def url(pg_url: str) -> str:
    migrate.upgrade(pg_url)
    return pg_url


@pytest.fixture
async def database(url: str) -> AsyncIterator[Database]:
    async with database_with_counters(url) as database:
        yield database


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the two modules send, in order."""
    sizes: list[int] = []
    for module, name in ((acceptance, "_accept_together"), (withdrawal, "_withdraw_together")):
        real = getattr(module, name)

        async def counted(tx: Any, batch: Sequence[Any], real: Any = real) -> Any:
            sizes.append(len(batch))
            return await real(tx, batch)

        monkeypatch.setattr(module, name, counted)
    return sizes


class Holder:
    """A transaction of its own that writes and does not commit until told (rolls back)."""

    def __init__(self, url: str) -> None:
        self._url = url

    async def __aenter__(self) -> Holder:
        self.connection = await asyncpg.connect(self._url)
        await self.connection.execute("SET deadlock_timeout = '30s'")  # the other side detects a deadlock
        self._transaction = self.connection.transaction()
        await self._transaction.start()
        return self

    async def insert(self, record: SessionRecord) -> None:
        assert await session_store.insert(PostgresTransaction(self.connection), record)

    async def lock(self, session_id: str) -> None:
        await session_store.get(PostgresTransaction(self.connection), session_id, lock=True)

    async def lock_jobs(self, session_id: str) -> None:
        await self.connection.execute("SELECT 1 FROM jobs WHERE session_id = $1 FOR UPDATE", session_id)

    async def release(self) -> None:
        """Roll back and leave (once)."""
        if not self.connection.is_closed():
            await self._transaction.rollback()
            await self.connection.close()

    async def __aexit__(self, *_exc: object) -> None:
        await self.release()


async def _lock_waiters(url: str, count: int) -> None:
    """Until ``count`` statements on this database wait for a lock: a fixed sleep instead
    let a busy machine reach the next step before the statement under test waited."""
    connection = await asyncpg.connect(url)
    try:
        for _ in range(1000):
            waiting = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{count} statement(s) should wait for a lock, {waiting} do")
    finally:
        await connection.close()


async def _settled(*tasks: asyncio.Task[Any]) -> list[Any]:
    return list(await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30))


async def _state(database: Database) -> tuple[dict[str, int], list[str], list[tuple[str, str]], list[str]]:
    async with database.reading() as tx:
        counters = {row[0]: row[1] for row in await tx.fetch(_COUNTERS)}
        jobs = [row[0] for row in await tx.fetch(_JOBS)]
        keys = [(row[0], row[1]) for row in await tx.fetch(_KEYS)]
        stored = [row[0] for row in await tx.fetch(_SESSIONS)]
    return counters, jobs, keys, stored


async def _behind_a_held_slot(url: str, acceptances: Acceptances, database: Database, records: list[SessionRecord], **keys: str) -> list[Any]:
    """Accept ``records[0]`` while another transaction holds its slot, then the rest while
    it waits (they go together in the next statement), then let the first through.
    ``keys``: Idempotency-Keys by session id. Returns each one's outcome."""
    first, *rest = records
    async with Holder(url) as holder:
        await holder.insert(planned_session(99, slot=first.slot or 0, demands={}))
        held = asyncio.create_task(accept(acceptances, database, first, keys.get(first.session_id)))
        await _lock_waiters(url, 1)  # its statement waits for the holder
        others = [asyncio.create_task(accept(acceptances, database, record, keys.get(record.session_id))) for record in rest]
        await asyncio.sleep(0.1)
    return await _settled(held, *others)


async def test_creates_in_flight_go_in_one_statement(url: str, database: Database, statements: list[int]) -> None:
    acceptances = Acceptances(database)
    records = [planned_session(n, slot=n, demands={"port:x": 5, "link-a": n}) for n in range(1, 12)]
    outcomes = await _behind_a_held_slot(url, acceptances, database, records, **{records[3].session_id: "k-4"})
    assert outcomes == [True] * 11
    assert statements == [1, 10]
    counters, jobs, keys, stored = await _state(database)
    assert counters == {"port:x": 55, "link-a": sum(range(1, 12))}
    assert jobs == stored == sorted(record.session_id for record in records)
    assert keys == [("k-4", records[3].session_id)]


async def test_a_batch_undone_by_a_twin_gives_each_create_its_own_outcome(url: str, database: Database, statements: list[int]) -> None:
    acceptances = Acceptances(database)
    live = planned_session(1, slot=1, demands={"port:x": 10})
    assert await accept(acceptances, database, live)
    statements.clear()
    first = planned_session(2, slot=2, demands={"link-a": 7})
    takes_slot_3 = planned_session(3, slot=3, demands={"port:x": 10})
    wants_slot_3 = planned_session(4, slot=3, demands={"port:x": 10})
    twin = replace(planned_session(5, slot=5, demands={"port:x": 10}), dedup_key=live.dedup_key)
    last = planned_session(6, slot=6, demands={"link-a": 3})
    keys = {takes_slot_3.session_id: "k-3", twin.session_id: "k-5"}
    outcomes = await _behind_a_held_slot(url, acceptances, database, [first, takes_slot_3, wants_slot_3, twin, last], **keys)
    assert outcomes[:3] == [True, True, False]
    assert isinstance(outcomes[3], UniqueViolation)
    assert outcomes[4] is True
    # the first alone, the other four together (undone by the twin), then each alone
    assert statements == [1, 4, 1, 1, 1, 1]
    counters, jobs, keys_kept, stored = await _state(database)
    assert counters == {"port:x": 20, "link-a": 10}
    expected = sorted(record.session_id for record in (live, first, takes_slot_3, last))
    assert jobs == stored == expected
    assert keys_kept == [("k-3", takes_slot_3.session_id)]


async def test_a_batch_that_does_not_fit_together_is_accepted_as_far_as_it_fits(url: str, database: Database, statements: list[int]) -> None:
    acceptances = Acceptances(database)
    first = planned_session(1, slot=1, demands={"link-a": 1})
    wanting = [planned_session(n, slot=n, demands={"port:x": 30}) for n in range(2, 6)]  # 120 of 100
    outcomes = await _behind_a_held_slot(url, acceptances, database, [first, *wanting])
    assert outcomes[:4] == [True, True, True, True]
    assert isinstance(outcomes[4], reservations.CapacityRace)
    assert outcomes[4].resource_id == "port:x"
    assert statements == [1, 4, 1, 1, 1, 1]
    counters, jobs, _keys, stored = await _state(database)
    assert counters == {"port:x": 90, "link-a": 1}
    assert len(jobs) == len(stored) == 4


async def test_a_batch_undone_by_a_deadlock_is_accepted_one_by_one(url: str, database: Database, statements: list[int]) -> None:
    """Two acceptances go together (slots 3 and 5) while another transaction holds slot 5;
    that one then wants slot 3, which the batch took: PostgreSQL undoes the batch to break
    the cycle, and each acceptance is made alone once the other transaction ends."""
    acceptances = Acceptances(database)
    first = planned_session(1, slot=1, demands={"link-a": 1})
    three, five = planned_session(3, slot=3, demands={"port:x": 10}), planned_session(5, slot=5, demands={"port:x": 10})
    async with Holder(url) as other, Holder(url) as stall:
        await other.insert(planned_session(95, slot=5, demands={}))
        await stall.insert(planned_session(91, slot=1, demands={}))
        held = asyncio.create_task(accept(acceptances, database, first))
        await _lock_waiters(url, 1)
        batch = [asyncio.create_task(accept(acceptances, database, record)) for record in (three, five)]
        await asyncio.sleep(0.1)
        await stall.release()  # the first goes; the batch takes slot 3 and waits for slot 5
        assert await asyncio.wait_for(held, timeout=10)
        await _lock_waiters(url, 1)
        await asyncio.wait_for(other.insert(planned_session(93, slot=3, demands={})), timeout=10)  # the cycle, broken after 1 s
        assert statements[:2] == [1, 2]
        # `other` rolls back as it leaves: each acceptance alone then takes its slot
    assert await _settled(held, *batch) == [True, True, True]
    assert statements == [1, 2, 1, 1]
    counters, _jobs, _keys, stored = await _state(database)
    assert counters == {"port:x": 20, "link-a": 1}
    assert stored == sorted(record.session_id for record in (first, three, five))


async def _withdraw(withdrawals: Withdrawals, record: SessionRecord, client: str = "alice") -> Withdrawn | None:
    return await withdrawals.withdraw(record.session_id, client, now=NOW, purge_at=NOW + timedelta(minutes=1))


async def test_deletes_in_flight_go_in_one_statement_each_with_its_own_outcome(url: str, database: Database, statements: list[int]) -> None:
    acceptances, withdrawals = Acceptances(database), Withdrawals(database)
    records = [replace(planned_session(n, slot=n, demands={"port:x": n, "link-a": 10 * n}), sink=None) for n in range(1, 7)]
    records[4] = replace(records[4], sink="https://example.com/hook")  # a sink to notify: its event goes in with it
    for record in records:
        assert await accept(acceptances, database, record)
    async with database.autocommit() as tx:
        await tx.execute(_BEGIN, session=records[2].session_id)  # a worker began building it
    statements.clear()
    first, second, begun, others, with_sink, last = records
    asks = [(second, "alice"), (begun, "alice"), (others, "bob"), (with_sink, "alice"), (second, "alice"), (last, "alice")]
    async with Holder(url) as holder:
        await holder.lock_jobs(first.session_id)
        held = asyncio.create_task(_withdraw(withdrawals, first))
        await _lock_waiters(url, 1)  # its statement waits for the job's row
        batch = [asyncio.create_task(_withdraw(withdrawals, record, client)) for record, client in asks]
        await asyncio.sleep(0.1)
    # begun: ended, its teardown queued; another's: left to the caller's transaction; the
    # second ask for the same session is told no (it then finds it gone)
    gone, ending = Withdrawn.GONE, Withdrawn.ENDING
    assert await _settled(held, *batch) == [gone, gone, ending, None, gone, None, gone]
    assert statements == [1, 6]
    counters, jobs, _keys, stored = await _state(database)
    kept = (begun, others)  # an ended session holds its capacity until its teardown
    assert stored == sorted(record.session_id for record in kept)
    assert jobs == [others.session_id]
    assert counters == {"port:x": sum(r.held["port:x"] for r in kept), "link-a": sum(r.held["link-a"] for r in kept)}
    async with database.reading() as tx:
        told = await tx.fetch(Sql("SELECT session_id, sink, access_token, status, status_info, started_at, ended_at, actual FROM events"))
    assert [tuple(row[:5]) + (parse_time(row[5]), parse_time(row[6]), json_value(row[7])) for row in told] == [
        (with_sink.session_id, "https://example.com/hook", "secret", "UNAVAILABLE", "DELETE_REQUESTED", None, NOW, with_sink.actual)
    ]
    async with database.reading() as tx:
        ended = await session_store.get(tx, begun.session_id)
        teardown = await tx.fetch(Sql("SELECT payload, run_at FROM jobs WHERE session_id = :session AND kind = 'teardown'"), session=begun.session_id)
    assert ended is not None and (ended.status, ended.status_info, ended.ended_at, ended.purge_at) == (
        "UNAVAILABLE", "DELETE_REQUESTED", NOW, NOW + timedelta(minutes=1)
    )
    assert [(json_value(payload), run_at) for payload, run_at in teardown] == [({"delete": True}, NOW)]


async def test_a_delete_does_not_wait_for_a_session_another_transaction_holds(url: str, database: Database) -> None:
    """Its statement skips the row (and tells the caller to take the transaction path,
    which waits for it): the deletes that share the statement are not held up by it."""
    acceptances, withdrawals = Acceptances(database), Withdrawals(database)
    record = replace(planned_session(1, slot=1, demands={"port:x": 10}), sink=None)
    assert await accept(acceptances, database, record)
    before = await _state(database)
    async with Holder(url) as holder:
        await holder.lock(record.session_id)
        assert await asyncio.wait_for(_withdraw(withdrawals, record), timeout=5) is None
        assert await _state(database) == before
    assert await _withdraw(withdrawals, record) is Withdrawn.GONE
    assert (await _state(database))[3] == []
