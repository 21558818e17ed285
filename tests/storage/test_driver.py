"""The driver-level transactions (``storage.driver``) on both databases: what they write
is what the ORM reads (times, JSON, booleans), errors map to UniqueViolation and
DatabaseUnavailable, a failed transaction leaves nothing, and on SQLite a writer in
another process makes a transaction wait without blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from s2cvpn.storage import migrate, session_store
from s2cvpn.storage.db import create_engine, session_factory
from s2cvpn.storage.driver import DatabaseUnavailable, Sql, SqliteDatabase, Transaction, UniqueViolation, open_database
from s2cvpn.storage.tables import SessionRow
from tests.support.records import CREATED, stored_session



def test_parameters_are_numbered_once_per_name_for_both_drivers() -> None:
    sql = Sql("SELECT a + :delta FROM t WHERE id = :id AND a + :delta <= :cap AND b::text = 'x:y' {lock}", lock="FOR UPDATE")
    assert sql.postgres == "SELECT a + $1 FROM t WHERE id = $2 AND a + $1 <= $3 AND b::text = 'x:y' FOR UPDATE"
    assert sql.names == ("delta", "id", "cap")
    assert sql.sqlite == "SELECT a + ?1 FROM t WHERE id = ?2 AND a + ?1 <= ?3 AND b::text = 'x:y'"


async def test_sqlite_binds_each_name_once_by_position(tmp_path: Any) -> None:
    """A name used twice is one parameter: its value is given once, and both uses see it."""
    database = SqliteDatabase(str(tmp_path / "numbered.db"))
    try:
        async with database.transaction() as tx:
            await tx.execute(Sql("CREATE TABLE t (a INTEGER, b TEXT)"))
            await tx.execute_many(Sql("INSERT INTO t VALUES (:a, :b)"), [{"b": "one", "a": 1}, {"a": 2, "b": "two"}])
            both = Sql("SELECT b, :shift + a, :shift FROM t WHERE a + :shift > :floor ORDER BY a")
            assert [tuple(row) for row in await tx.fetch(both, floor=11, shift=10)] == [("two", 12, 10)]
            assert await tx.execute(Sql("UPDATE t SET a = a + :d WHERE a = :a OR a = :d"), a=1, d=2) == 2
    finally:
        await database.close()


async def test_what_the_driver_writes_the_orm_reads_and_back(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    database = open_database(migrated_url)
    try:
        record = stored_session(1)
        async with database.transaction() as tx:
            await session_store.insert(tx, record)
            started = await session_store.update(tx, record, status="AVAILABLE", started_at=CREATED, expires_at=CREATED + timedelta(hours=1))
        async with session_factory(engine)() as db:
            orm = await db.get(SessionRow, record.session_id)
        assert orm is not None
        assert (orm.status, orm.started_at, orm.expires_at) == ("AVAILABLE", CREATED, CREATED + timedelta(hours=1))
        assert orm.request == record.request and orm.sink_credential == {"accessToken": "secret"} and orm.sink_gone is False
        assert orm.created_at == CREATED  # microseconds and zone kept

        async with database.reading() as tx:
            assert await session_store.get(tx, record.session_id) == started
        async with session_factory(engine)() as db, db.begin():
            (await db.get(SessionRow, record.session_id)).sink_gone = True  # type: ignore[union-attr]
        async with database.transaction() as tx:
            assert await session_store.get(tx, record.session_id, lock=True) == replace(started, sink_gone=True)
            # the expiry sweep compares times as the ORM stored them
            assert [r.session_id for r in await session_store.lock_expired(tx, CREATED + timedelta(hours=1), 10)] == [record.session_id]
            assert await session_store.lock_expired(tx, CREATED + timedelta(minutes=59), 10) == []
        async with database.reading() as tx:  # the sweep's cheap look first agrees with it
            assert await session_store.any_expired(tx, CREATED + timedelta(hours=1))
            assert not await session_store.any_expired(tx, CREATED + timedelta(minutes=59))
    finally:
        await database.close()
        await engine.dispose()


async def test_a_failed_transaction_leaves_nothing_and_a_taken_key_is_a_unique_violation(migrated_url: str) -> None:
    database = open_database(migrated_url)
    try:
        with pytest.raises(ValueError):
            async with database.transaction() as tx:
                await session_store.insert(tx, stored_session(2))
                raise ValueError("an answer of ours, after a write")
        async with database.reading() as tx:
            assert await session_store.get(tx, stored_session(2).session_id) is None

        async with database.transaction() as tx:
            await session_store.insert(tx, stored_session(3))
        with pytest.raises(UniqueViolation):
            async with database.transaction() as tx:
                await session_store.insert(tx, replace(stored_session(3), slot=30))
        async with database.transaction() as tx:  # the connection is sound after both failures
            assert await session_store.get(tx, stored_session(3).session_id) == stored_session(3)
    finally:
        await database.close()


async def test_a_schema_less_database_is_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    database = open_database(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseUnavailable):
            async with database.transaction() as tx:
                await session_store.get(tx, "x")
    finally:
        await database.close()


async def test_sqlite_commits_with_the_durability_of_the_orm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """synchronous=NORMAL on WAL, as the ORM's connections have it, not FULL (an fsync per
    commit, with the event loop waiting)."""
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    database = open_database(url)
    engine = create_engine(url)
    try:
        async with database.transaction() as tx:
            driver_level = await tx.fetchval(Sql("PRAGMA synchronous"))
        async with engine.connect() as connection:
            orm_level = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
    finally:
        await database.close()
        await engine.dispose()
    assert journal == "wal"
    assert driver_level == orm_level == 1  # NORMAL


_COUNT_WRITE = Sql("INSERT INTO rate_counts (client_id, window_start, replica, count) VALUES (:client, 0, 'r', 1)")
_COUNT_READ = Sql("SELECT client_id FROM rate_counts WHERE client_id = :client")


async def _sqlite_database(tmp_path) -> tuple[SqliteDatabase, list[str]]:  # type: ignore[no-untyped-def]
    """A migrated SQLite database and the statements its writer runs from now on."""
    url = f"sqlite:///{tmp_path / 'group.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    database = open_database(url)
    assert isinstance(database, SqliteDatabase)
    statements: list[str] = []
    database._connection.set_trace_callback(statements.append)  # noqa: SLF001 - watch the writer
    return database, statements


async def test_sqlite_transactions_waiting_together_share_one_commit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Transactions queued behind each other join one COMMIT, and each one's writes are
    committed (visible to a reader) by the time its ``async with`` ends."""
    database, statements = await _sqlite_database(tmp_path)

    async def write(n: int) -> None:
        async with database.transaction() as tx:
            await tx.execute(_COUNT_WRITE, client=f"c{n}")
        async with database.reading() as reader:
            assert await reader.fetch(_COUNT_READ, client=f"c{n}") == [(f"c{n}",)]

    try:
        await asyncio.gather(*(write(n) for n in range(50)))
    finally:
        await database.close()
    assert 1 <= statements.count("COMMIT") <= 2
    assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT")


async def _write_together(
    database: SqliteDatabase, count: int, then: Callable[[int, Transaction], Awaitable[None]] | None = None
) -> tuple[list[object], set[str]]:
    """``count`` transactions queued together, each writing its row (then ``then(n, tx)``):
    how each one ended, and the rows kept. Closes the database."""

    async def write(n: int) -> None:
        async with database.transaction() as tx:
            await tx.execute(_COUNT_WRITE, client=f"c{n}")
            if then is not None:
                await then(n, tx)

    try:
        outcomes = await asyncio.gather(*(write(n) for n in range(count)), return_exceptions=True)
        async with database.reading() as reader:
            kept = {row[0] for row in await reader.fetch(Sql("SELECT client_id FROM rate_counts"))}
    finally:
        await database.close()
    return outcomes, kept


async def test_sqlite_a_failing_transaction_rolls_back_alone_within_its_commit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database, statements = await _sqlite_database(tmp_path)

    async def refuse_the_fourth(n: int, _tx: Transaction) -> None:
        if n == 3:
            raise ValueError("refused after writing")

    outcomes, kept = await _write_together(database, 8, refuse_the_fourth)
    assert [type(outcome).__name__ for outcome in outcomes] == ["NoneType"] * 3 + ["ValueError"] + ["NoneType"] * 4
    assert kept == {f"c{n}" for n in range(8)} - {"c3"}
    assert statements.count("COMMIT") == 1


async def test_sqlite_a_group_rolled_back_under_its_members_fails_them_all(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite rolls a whole transaction back itself on some errors (I/O, a full disk): the
    members before the failure lose their writes and hear so; the next ones start anew."""
    database, _statements = await _sqlite_database(tmp_path)

    async def disk_full_at_the_third(n: int, tx: Transaction) -> None:
        if n == 2:
            await tx.execute(Sql("ROLLBACK"))  # what SQLite does on its own then
            raise OSError("disk full")

    outcomes, kept = await _write_together(database, 5, disk_full_at_the_third)
    assert [type(outcome).__name__ for outcome in outcomes] == ["DatabaseUnavailable"] * 2 + ["OSError"] + ["NoneType"] * 2
    assert kept == {"c3", "c4"}


class _CommitFails:
    """The writer's connection, except that COMMIT fails as on a disk I/O error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, statement: str, *args: object) -> sqlite3.Cursor:
        if statement == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return self._connection.execute(statement, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


async def test_sqlite_a_failed_commit_fails_every_transaction_it_carried(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database, _statements = await _sqlite_database(tmp_path)
    database._connection = _CommitFails(database._connection)  # type: ignore[assignment]  # noqa: SLF001
    outcomes, kept = await _write_together(database, 5)
    assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes), outcomes
    assert kept == set()


async def test_sqlite_waits_for_another_writer_without_blocking_the_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    database = open_database(url)
    assert isinstance(database, SqliteDatabase)
    other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    async def write() -> float:
        began = time.monotonic()
        async with database.transaction() as tx:
            await session_store.insert(tx, stored_session(4))
        return time.monotonic() - began

    running = asyncio.create_task(ticker())
    try:
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        assert not writing.done()  # still waiting for the lock
        other.execute("COMMIT")
        waited = await asyncio.wait_for(writing, 5)
    finally:
        running.cancel()
        other.close()
        await database.close()
    assert waited >= 0.2
    assert ticks >= 10  # the loop kept running while the transaction waited
