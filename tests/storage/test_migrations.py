"""Migrations: replicas that start together on one database all succeed."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, IntegrityError

from s2cvpn.storage.db import create_engine, switch_to_wal
from s2cvpn.storage.tables import Base


async def _table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def test_concurrent_migrations_all_succeed(fresh_database_url: str) -> None:
    env = {**os.environ, "S2CVPN_DATABASE_URL": fresh_database_url}
    processes = [
        subprocess.Popen([sys.executable, "-m", "s2cvpn", "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
    assert set(Base.metadata.tables) <= asyncio.run(_table_names(fresh_database_url))


def test_connections_switching_a_new_sqlite_file_to_wal_together_all_succeed(tmp_path: Path) -> None:
    """What replicas starting together on a new SQLite file do first: 8 connections switch
    each of 100 new files at once. With a plain ``PRAGMA journal_mode=WAL`` some switch got
    "database is locked", at once, whatever the busy timeout: this test failed in 6 runs of
    6 so (``test_concurrent_migrations_all_succeed`` failed once so in CI)."""
    for round_ in range(100):
        path = tmp_path / f"new-{round_}.db"
        together = threading.Barrier(8)
        failures: list[Exception] = []

        def switch(url: str = f"sqlite:///{path}") -> None:
            together.wait()
            try:
                switch_to_wal(url)
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(exc)

        threads = [threading.Thread(target=switch) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_match_the_tables(fresh_database_url: str) -> None:
    """Every table, column and index of ``tables.py`` comes from a migration (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from s2cvpn.storage import migrate

    migrate.upgrade(fresh_database_url)

    async def differences() -> list[object]:
        engine = create_engine(fresh_database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": False}), Base.metadata)
                )
        finally:
            await engine.dispose()

    assert asyncio.run(differences()) == []


async def _sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements`` in one transaction; the rows of the last one."""
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = await connection.execute(text(statement))
                rows = [tuple(row) for row in result] if result.returns_rows else []
            return rows
    finally:
        await engine.dispose()


def test_0006_moves_slots_and_keys_onto_sessions_and_back(fresh_database_url: str) -> None:
    """Sessions stored before 0006 keep their slot (held or not) and their key (live or
    not) after it, and a downgrade writes the old tables back, reservations from the plans
    of the sessions not yet released."""
    from s2cvpn.storage import migrate

    migrate.upgrade(fresh_database_url, "0005")
    columns = "session_id, client_id, status, request, sla, bandwidth_mbps, duration_hours, created_at, sink_gone, dedup_key, released_at, plan"
    sessions = [  # (id, status, released, dedup key, slot held)
        ("live", "AVAILABLE", None, "k-live", 3),
        ("ended", "UNAVAILABLE", None, "k-ended", 4),  # teardown not run yet: slot still held
        ("gone", "UNAVAILABLE", "2026-11-28 13:00:00", "k-gone", None),
    ]

    def run(*statements: str) -> list[tuple[object, ...]]:
        return asyncio.run(_sql(fresh_database_url, *statements))

    inserts = []
    for session_id, status, released, key, slot in sessions:
        released_sql = "NULL" if released is None else f"'{released}'"
        inserts.append(
            f"INSERT INTO sessions ({columns}) VALUES ('{session_id}', 'c', '{status}', '{{}}', 'A', 10, 1.0, "
            f"'2026-11-28 12:00:00', false, '{key}', {released_sql}, '{{\"demands\": {{\"port:{session_id}\": 10}}}}')"
        )
        if released is None:
            inserts.append(f"INSERT INTO reservations (session_id, resource_id, mbps) VALUES ('{session_id}', 'port:{session_id}', 10)")
        if slot is not None:
            inserts.append(f"INSERT INTO pool_slots (slot, session_id) VALUES ({slot}, '{session_id}')")
        if status == "AVAILABLE":
            inserts.append(f"INSERT INTO active_keys (dedup_key, session_id) VALUES ('{key}', '{session_id}')")
    run(*inserts)

    migrate.upgrade(fresh_database_url)
    assert "reservations" not in asyncio.run(_table_names(fresh_database_url))
    assert run("SELECT session_id, slot FROM sessions ORDER BY session_id") == [("ended", 4), ("gone", None), ("live", 3)]
    twin = inserts[0].replace("'live'", "'twin'")  # another live session with the same key
    with pytest.raises(IntegrityError):
        run(twin)

    from alembic import command

    command.downgrade(migrate.alembic_config(fresh_database_url), "0005")
    assert run("SELECT slot, session_id FROM pool_slots ORDER BY slot") == [(3, "live"), (4, "ended")]
    assert run("SELECT dedup_key, session_id FROM active_keys") == [("k-live", "live")]
    held = run("SELECT session_id, resource_id, mbps FROM reservations ORDER BY session_id")
    assert held == [("ended", "port:ended", 10), ("live", "port:live", 10)]


def test_0008_counts_attempted_jobs_as_begun_and_back(fresh_database_url: str) -> None:
    """Jobs queued before 0008: one a worker attempted may have touched the network, so it
    counts as begun (a delete tears its session down); one never attempted does not. The
    downgrade drops the column, and the upgrade runs again."""
    from alembic import command

    from s2cvpn.storage import migrate

    migrate.upgrade(fresh_database_url, "0007")
    columns = "kind, session_id, payload, run_at, attempts, created_at"
    asyncio.run(
        _sql(
            fresh_database_url,
            f"INSERT INTO jobs ({columns}) VALUES ('provision', 'tried', '{{}}', '2026-11-29 10:00:00', 2, '2026-11-29 09:00:00')",
            f"INSERT INTO jobs ({columns}) VALUES ('provision', 'fresh', '{{}}', '2026-11-29 10:00:00', 0, '2026-11-29 09:30:00')",
        )
    )
    migrate.upgrade(fresh_database_url)
    begun = asyncio.run(_sql(fresh_database_url, "SELECT session_id, begun_at IS NOT NULL FROM jobs ORDER BY session_id"))
    assert begun == [("fresh", False), ("tried", True)]
    command.downgrade(migrate.alembic_config(fresh_database_url), "0007")
    with pytest.raises(DBAPIError):  # the column has gone
        asyncio.run(_sql(fresh_database_url, "SELECT begun_at FROM jobs"))
    assert len(asyncio.run(_sql(fresh_database_url, "SELECT * FROM jobs"))) == 2
    migrate.upgrade(fresh_database_url)
    assert asyncio.run(_sql(fresh_database_url, "SELECT count(*) FROM jobs WHERE begun_at IS NOT NULL")) == [(1,)]


def test_0009_events_written_before_it_are_posted_as_they_were_and_back(fresh_database_url: str) -> None:
    """An event queued before 0009 holds its CloudEvent: after the upgrade it is posted as
    it is, beside one written since, which the worker renders from what it tells (with its
    own id and time). A downgrade keeps the old one and drops the new one, which has no body
    for the old code to post."""
    from alembic import command

    from s2cvpn.bootstrap import open_context
    from s2cvpn.config import Settings
    from s2cvpn.service import notifications, sinks
    from s2cvpn.storage import events, migrate
    from tests.service.test_reservation_invariant import FakeClock
    from tests.support.records import status_of
    from tests.support.sink import Sink

    migrate.upgrade(fresh_database_url, "0008")
    old_body = {"id": "old", "type": "org.camaraproject.site-to-cloud-vpn.v0.session-status-changed", "data": {"status": "AVAILABLE"}}
    asyncio.run(
        _sql(
            fresh_database_url,
            "INSERT INTO events (event_id, session_id, sink, body, attempts, next_attempt_at, created_at) VALUES"
            f" ('old', 's-old', 'SINK', '{json.dumps(old_body)}', 0, '2026-11-28 11:00:00', '2026-11-28 11:00:00')",
        )
    )
    migrate.upgrade(fresh_database_url)
    with Sink() as sink:
        asyncio.run(_sql(fresh_database_url, f"UPDATE events SET sink = '{sink.url}/hook'"))

        async def deliver() -> int:
            clock = FakeClock()
            settings = Settings(database_url=fresh_database_url, sink_allow_private=True)
            async with open_context(settings, clock=clock, migrate_first=False) as ctx, sinks.open_client(allow_private=True) as client:
                async with ctx.database.transaction() as tx:
                    await events.add_event(tx, event_id="new", row=status_of("s-new"), sink=f"{sink.url}/hook", access_token=None, access_token_expires_at=None, now=clock.now())
                return await notifications.deliver_due(ctx, client, notifications.PostingSlots())

        assert asyncio.run(deliver()) == 2
        posted = {event["body"]["id"]: event["body"] for event in sink.received}
    assert posted["old"] == old_body
    assert (posted["new"]["time"], posted["new"]["data"], posted["new"]["source"].endswith("/sessions/s-new")) == (
        "2026-11-28T12:00:00Z", {"sessionId": "s-new", "status": "REQUESTED"}, True
    )
    command.downgrade(migrate.alembic_config(fresh_database_url), "0008")
    assert asyncio.run(_sql(fresh_database_url, "SELECT event_id FROM events")) == [("old",)]
    migrate.upgrade(fresh_database_url)
