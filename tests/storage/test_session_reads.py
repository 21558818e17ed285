"""The driver-level session reader (getSession, listSessions) against the ORM rows it
stands in for, on both databases, and its failures as DatabaseUnavailable (503)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from s2cvpn.storage import session_reads
from s2cvpn.storage.db import create_engine, session_factory
from s2cvpn.storage.driver import DatabaseUnavailable, Sql, open_database
from s2cvpn.storage.session_reads import VIEW_FIELDS, SessionReader
from s2cvpn.storage.tables import SessionRow
from tests.support.databases import CountedReads
from tests.support.servers import free_port

START = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def _row(n: int, client_id: str, *, ended: bool = False) -> SessionRow:
    created = START + timedelta(seconds=n)
    return SessionRow(
        session_id=f"00000000-0000-4000-8000-{n:012d}",
        client_id=client_id,
        status="UNAVAILABLE" if ended else "AVAILABLE",
        status_info="DURATION_EXPIRED" if ended else None,
        request={"serviceName": f"s{n}", "applicationServers": [{"ipv4Address": "10.0.0.1/32"}], "sla": "AA"},
        sla="AA",
        bandwidth_mbps=10 + n,
        max_latency_ms=None if n % 2 else 20,
        duration_hours=1.5,
        created_at=created,
        started_at=created + timedelta(seconds=1),
        expires_at=created + timedelta(hours=1.5),
        ended_at=created + timedelta(minutes=5) if ended else None,
        plan={"primary": {"links": ["a", "b"]}},
        allocation={"slot": n, "service_id": f"svc-{n}"},
        actual={"actualLatency": 1.25},
        sink="https://example.com/hook",
        sink_credential={"accessToken": "secret"},
        dedup_key=f"key-{n}",
    )


async def test_reads_what_the_orm_wrote(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    database = open_database(migrated_url)
    reader = SessionReader(database)
    try:
        written = [_row(n, "alice", ended=n == 3) for n in range(5)] + [_row(9, "bob")]
        async with session_factory(engine)() as db, db.begin():
            db.add_all(written)
        async with session_factory(engine)() as db:
            stored = {w.session_id: await db.get(SessionRow, w.session_id) for w in written}

        for session_id, orm in stored.items():
            view = await reader.one(session_id)
            assert view is not None
            assert {name: getattr(view, name) for name in VIEW_FIELDS} == {name: getattr(orm, name) for name in VIEW_FIELDS}
            assert view.created_at.tzinfo is not None and view.created_at == orm.created_at
        assert await reader.one("00000000-0000-4000-8000-999999999999") is None

        first, total = await reader.page("alice", 0, 2)
        assert total == 5 and [v.session_id for v in first] == [w.session_id for w in written[:2]]  # oldest first
        last, total = await reader.page("alice", 4, 2)
        assert total == 5 and [v.session_id for v in last] == [written[4].session_id]
        beyond, total = await reader.page("alice", 10, 2)
        assert (beyond, total) == ([], 5)
        assert await reader.page("nobody", 0, 20) == ([], 0)
        assert "sink_credential" not in VIEW_FIELDS  # never read on the API's hot path
    finally:
        await database.close()
        await engine.dispose()


async def test_a_row_read_again_is_the_same_view_until_it_changes(migrated_url: str) -> None:
    """Views are kept per row as read: an unchanged row gives back the very view (and so the
    encoding kept with it), and a change to any column the view shows gives a new one."""
    written = _row(1, "alice")
    await _stored_rows(migrated_url, [written])
    database = open_database(migrated_url)
    reader = SessionReader(database)
    try:
        first = await reader.one(written.session_id)
        assert await reader.one(written.session_id) is first
        (paged,), _total = await reader.page("alice", 0, 20)
        assert paged is first  # the page's row, as read, is the same row

        changes = {"status": "UNAVAILABLE", "actual": {"actualLatency": 2.5}, "ended_at": START + timedelta(hours=1)}
        seen = [first]
        for column, value in changes.items():
            async with database.transaction() as tx:
                await tx.execute(Sql(f"UPDATE sessions SET {column} = :value WHERE session_id = :session"), value=value, session=written.session_id)
            view = await reader.one(written.session_id)
            assert view is not None and getattr(view, column) == value
            assert all(view is not earlier for earlier in seen)
            seen.append(view)
    finally:
        await database.close()


async def test_an_unreachable_database_is_database_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    postgres = open_database(f"postgresql://postgres@127.0.0.1:{free_port()}/none")  # nothing listens
    with pytest.raises(DatabaseUnavailable):
        await SessionReader(postgres).one("x")
    with pytest.raises(DatabaseUnavailable):
        await SessionReader(postgres).page("x", 0, 20)
    with pytest.raises(DatabaseUnavailable):
        async with postgres.transaction():
            pass
    await postgres.close()

    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # a database without the schema
    lite = open_database(f"sqlite:///{path}")
    with pytest.raises(DatabaseUnavailable):
        await SessionReader(lite).one("x")
    with pytest.raises(DatabaseUnavailable):
        await SessionReader(lite).page("x", 0, 20)
    await lite.close()


async def _stored_rows(url: str, rows: list[SessionRow]) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db, db.begin():
            db.add_all(rows)
    finally:
        await engine.dispose()


async def test_concurrent_reads_each_get_their_own_session(migrated_url: str) -> None:
    """Reads of many ids at once, some unknown, some repeated: each gets its session or None,
    and on PostgreSQL they share queries (fewer statements than reads)."""
    written = [_row(n, "alice") for n in range(6)]
    await _stored_rows(migrated_url, written)
    database = open_database(migrated_url)
    queries = CountedReads(database)
    reader = SessionReader(database)
    wanted = [written[n % 8].session_id if n % 8 < 6 else f"00000000-0000-4000-8000-{900 + n:012d}" for n in range(200)]
    try:
        views = await asyncio.gather(*(reader.one(session_id) for session_id in wanted))
    finally:
        await database.close()
    for session_id, view in zip(wanted, views, strict=True):
        if session_id in {w.session_id for w in written}:
            assert view is not None and view.session_id == session_id and view.bandwidth_mbps == 10 + int(session_id[-2:])
        else:
            assert view is None
    if database.dialect == "postgresql":
        assert 1 <= queries.count < len(wanted) / 4, queries.count
    else:
        assert queries.count == len(wanted)


@pytest.mark.postgres
async def test_a_page_fetches_whole_only_the_rows_not_seen_as_they_are(migrated_pg_url: str) -> None:
    """PostgreSQL reads a page as its rows' versions first: a row whose view is kept for
    its version is not fetched again, and a row that changed is."""
    written = [_row(n, "alice") for n in range(3)]
    await _stored_rows(migrated_pg_url, written)
    database = open_database(migrated_pg_url)
    reading = database.reading
    fetched_whole: list[tuple[str, ...]] = []

    class Recorded:
        def __init__(self, tx: Any) -> None:
            self._tx = tx

        def __getattr__(self, name: str) -> Any:
            return getattr(self._tx, name)

        async def fetch(self, sql: Sql, **params: Any) -> Any:
            if sql is session_reads.SOME_VERSIONED:
                fetched_whole.append(params["sessions"])
            return await self._tx.fetch(sql, **params)

    @asynccontextmanager
    async def recorded() -> AsyncIterator[Any]:
        async with reading() as tx:
            yield Recorded(tx)

    database.reading = recorded  # type: ignore[method-assign]
    reader = SessionReader(database)
    ids = [row.session_id for row in written]
    try:
        first, total = await reader.page("alice", 0, 20)
        assert total == 3 and [view.session_id for view in first] == ids and fetched_whole == [tuple(ids)]
        again, _total = await reader.page("alice", 0, 20)
        assert fetched_whole == [tuple(ids)] and all(view is seen for view, seen in zip(again, first, strict=True))

        async with database.transaction() as tx:
            await tx.execute(Sql("UPDATE sessions SET status = 'UNAVAILABLE' WHERE session_id = :session"), session=ids[1])
        changed, _total = await reader.page("alice", 0, 20)
        assert fetched_whole == [tuple(ids), (ids[1],)]
        assert [view.status for view in changed] == ["AVAILABLE", "UNAVAILABLE", "AVAILABLE"]
        assert changed[0] is first[0] and changed[2] is first[2]
    finally:
        await database.close()


@pytest.mark.postgres
async def test_coalesced_reads_fail_together_and_the_next_ones_read_again(migrated_pg_url: str) -> None:
    written = _row(1, "alice")
    await _stored_rows(migrated_pg_url, [written])
    database = open_database(migrated_pg_url)
    reading, failures = database.reading, 1

    def flaky():  # type: ignore[no-untyped-def]
        nonlocal failures
        if failures:
            failures -= 1
            raise DatabaseUnavailable("injected outage")
        return reading()

    database.reading = flaky  # type: ignore[method-assign]
    reader = SessionReader(database)
    try:
        first = [asyncio.create_task(reader.one(written.session_id)) for _ in range(5)]
        abandoned = asyncio.create_task(reader.one(written.session_id))
        await asyncio.sleep(0)  # every read is waiting for the first query
        abandoned.cancel()  # a client gone: its read is dropped, the others are answered
        outcomes = await asyncio.gather(*first, return_exceptions=True)
        assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes), outcomes
        assert abandoned.cancelled()
        again = await asyncio.gather(*(reader.one(written.session_id) for _ in range(5)))  # the next reads query again
        assert [view.session_id for view in again if view is not None] == [written.session_id] * 5
        # at shutdown the task sending the queries is cancelled: no read is left waiting forever
        stranded = [asyncio.create_task(reader.one(written.session_id)) for _ in range(3)]
        await asyncio.sleep(0)
        reader._batches._sending.cancel()  # type: ignore[union-attr]
        await asyncio.wait(stranded, timeout=5)
        assert all(task.cancelled() for task in stranded)
        assert (await reader.one(written.session_id)) is not None
    finally:
        await database.close()
