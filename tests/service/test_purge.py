"""The purge sweep forgets finished notifications after a day and keeps pending ones."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.service import provisioning
from s2cvpn.storage import events as event_store
from s2cvpn.storage.tables import EventRow
from tests.service.test_reservation_invariant import FakeClock


def test_finished_events_are_purged_after_a_day_pending_ones_kept(fresh_database_url: str) -> None:
    async def scenario() -> set[str]:
        clock = FakeClock()
        async with open_context(Settings(database_url=fresh_database_url), clock=clock) as ctx:
            now = clock.now()
            async with ctx.database.transaction() as tx:
                for event_id, age_hours in (("old-done", 30), ("old-pending", 30), ("new-done", 1)):
                    created = now - timedelta(hours=age_hours)
                    await event_store.add_event(
                        tx, event_id=event_id, session_id="s", sink="https://x.example/", access_token=None, body={}, now=created
                    )
            async with ctx.db() as db, db.begin():
                for event_id in ("old-done", "new-done"):
                    await event_store.mark_done(db, event_id, outcome="204", now=now)
            await provisioning.purge_due(ctx)
            async with ctx.db() as db:
                return set((await db.scalars(select(EventRow.event_id))).all())

    assert asyncio.run(scenario()) == {"old-pending", "new-done"}
