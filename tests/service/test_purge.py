"""The purge sweep forgets sessions past their retention and finished notifications after a
day, and keeps the rest; the worker's idle polls take no write lock."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.service import measurements, notifications, provisioning, sinks
from s2cvpn.storage import events as event_store
from s2cvpn.storage import session_store
from s2cvpn.storage.tables import EventRow, SessionRow
from tests.service.test_reservation_invariant import FakeClock
from tests.support.records import status_of, stored_session


def test_finished_events_are_purged_after_a_day_pending_ones_kept(fresh_database_url: str) -> None:
    async def scenario() -> set[str]:
        clock = FakeClock()
        async with open_context(Settings(database_url=fresh_database_url), clock=clock) as ctx:
            now = clock.now()
            async with ctx.database.transaction() as tx:
                for event_id, age_hours in (("old-done", 30), ("old-pending", 30), ("new-done", 1)):
                    created = now - timedelta(hours=age_hours)
                    await event_store.add_event(
                        tx, event_id=event_id, row=status_of("s"), sink="https://x.example/", access_token=None, access_token_expires_at=None, now=created
                    )
            async with ctx.database.transaction() as tx:
                await event_store.mark_done(tx, {"old-done": "204", "new-done": "204"}, now=now)
            await provisioning.purge_due(ctx)
            async with ctx.db() as db:
                return set((await db.scalars(select(EventRow.event_id))).all())

    assert asyncio.run(scenario()) == {"old-pending", "new-done"}


def test_sessions_past_retention_are_purged_in_batches_and_only_they(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ended, released and past ``purge_at``: forgotten, however many (several batches in
    one sweep). Not yet released (the network still holds it), not yet due, or live: kept."""
    monkeypatch.setattr(provisioning, "PURGE_BATCH", 4)

    async def scenario() -> tuple[int, set[str]]:
        clock = FakeClock()
        async with open_context(Settings(database_url=fresh_database_url), clock=clock) as ctx:
            now = clock.now()
            ended = {"status": "UNAVAILABLE", "ended_at": now - timedelta(hours=2)}
            kinds = {
                "due": {**ended, "purge_at": now - timedelta(seconds=1), "released_at": now - timedelta(hours=2)},
                "unreleased": {**ended, "purge_at": now - timedelta(seconds=1)},
                "not-yet": {**ended, "purge_at": now + timedelta(seconds=1), "released_at": now - timedelta(hours=2)},
                "live": {"status": "AVAILABLE", "expires_at": now + timedelta(hours=1)},
            }
            counts = {"due": 10, "unreleased": 2, "not-yet": 2, "live": 2}
            n = 0
            async with ctx.database.transaction() as tx:
                for kind, count in counts.items():
                    for _ in range(count):
                        n += 1
                        assert await session_store.insert(tx, replace(stored_session(n), dedup_key=f"{kind}-{n}", **kinds[kind]))
            purged = await provisioning.purge_due(ctx)
            async with ctx.db() as db:
                left = await db.scalars(select(SessionRow.dedup_key))
                return purged, {key.rsplit("-", 1)[0] for key in left.all()}

    purged, kinds_left = asyncio.run(scenario())
    assert purged == 10
    assert kinds_left == {"unreleased", "not-yet", "live"}


def test_idle_polls_and_passes_do_not_wait_for_the_sqlite_write_lock(tmp_path: Path) -> None:
    """The worker asks several times a second whether notifications are due and when the next
    session expires, and every half minute compares the network with the database and
    measures the sessions. Run while another connection holds SQLite's one write lock (as
    the API's writes do under load), with nothing to do, each answers at once: plain reads,
    no write transaction."""
    url = f"sqlite:///{tmp_path}/idle.db"

    async def scenario() -> tuple[object, ...]:
        async with open_context(Settings(database_url=url), clock=FakeClock()) as ctx, sinks.open_client(allow_private=True) as client:
            writer = sqlite3.connect(tmp_path / "idle.db", isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")
            try:
                return (
                    await asyncio.wait_for(notifications.deliver_due(ctx, client, notifications.PostingSlots()), timeout=5),
                    await asyncio.wait_for(provisioning.next_expiry(ctx), timeout=5),
                    await asyncio.wait_for(provisioning.reconcile(ctx), timeout=5),
                    await asyncio.wait_for(measurements.refresh_measurements(ctx), timeout=5),
                )
            finally:
                writer.execute("ROLLBACK")
                writer.close()

    assert asyncio.run(scenario()) == (0, None, {"reapplied": 0, "removed": 0, "terminated": 0}, 0)
