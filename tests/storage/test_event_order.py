"""The notification claim on both databases keeps each session's events in the order they
were written: an event waits while an earlier one of its session is leased (by a worker
that may have died holding it) or waiting for its retry, and is never taken ahead of an
earlier one; other sessions' events are not held up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from s2cvpn.storage import events
from s2cvpn.storage.driver import Database, Sql, open_database, parse_time

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=15)
_RETRY_AT = Sql("UPDATE events SET next_attempt_at = :at, attempts = 1 WHERE event_id = :event")


async def _add(database: Database, *queued: tuple[str, str, datetime]) -> None:
    async with database.transaction() as tx:
        for event_id, session_id, written in queued:
            await events.add_event(
                tx, event_id=event_id, session_id=session_id, sink="https://sink.example.com/", access_token=None, body={}, now=written
            )


async def _claim(database: Database, at: datetime) -> list[str]:
    async with database.transaction() as tx:
        return [event.event_id for event in await events.claim_due(tx, now=at, lease=LEASE, limit=50)]


async def _due(database: Database, at: datetime) -> bool:
    async with database.reading() as tx:
        return await events.any_due(tx, at)


async def test_a_leased_event_holds_back_the_later_ones_of_its_session(migrated_url: str) -> None:
    database = open_database(migrated_url)
    try:
        await _add(database, ("s-1", "s", NOW - timedelta(seconds=3)), ("t-1", "t", NOW - timedelta(seconds=2)))
        assert await _claim(database, NOW) == ["s-1", "t-1"]  # the worker that holds them dies
        await _add(database, ("s-2", "s", NOW), ("t-2", "t", NOW), ("u-1", "u", NOW))
        async with database.transaction() as tx:
            await events.mark_done(tx, {"t-1": "204"}, now=NOW)  # t's first went out before it died
        later = NOW + timedelta(seconds=1)
        assert await _claim(database, later) == ["t-2", "u-1"]  # s-2 waits for s-1
        assert await _due(database, later) is False
        after_lease = NOW + LEASE + timedelta(seconds=1)
        assert await _claim(database, after_lease) == ["s-1", "s-2"]  # s-1 taken over, s-2 after it
    finally:
        await database.close()


async def test_an_event_waiting_for_its_retry_holds_back_the_later_ones(migrated_url: str) -> None:
    database = open_database(migrated_url)
    try:
        await _add(database, ("s-1", "s", NOW - timedelta(seconds=5)), ("s-2", "s", NOW - timedelta(seconds=1)))
        async with database.transaction() as tx:
            await tx.execute(_RETRY_AT, at=NOW + timedelta(seconds=2), event="s-1")  # failed once: due again in 2 s
        assert await _due(database, NOW) is False
        assert await _claim(database, NOW) == []
        # s-1 is due again after s-2 was written: s-2 would come first by due time, so it
        # waits until s-1 is over
        retry = NOW + timedelta(seconds=2)
        assert await _claim(database, retry) == ["s-1"]
        async with database.transaction() as tx:
            await events.mark_done(tx, {"s-1": "204"}, now=retry)
        assert await _claim(database, retry) == ["s-2"]
    finally:
        await database.close()


async def test_events_behind_a_retry_are_due_with_it_not_before(migrated_url: str) -> None:
    """A retry moves the later events of its session along to its own time, and an event
    written meanwhile is due then too: while a sink is down, the events held back are not
    due, so the poll and the claim do not read them on every round."""
    database = open_database(migrated_url)
    try:
        await _add(database, ("s-1", "s", NOW - timedelta(seconds=5)), ("s-2", "s", NOW - timedelta(seconds=4)))
        async with database.transaction() as tx:
            first, second = await events.claim_due(tx, now=NOW, lease=LEASE, limit=50)
        retry = NOW + timedelta(seconds=2)
        async with database.transaction() as tx:
            await events.mark_retry(tx, [(first, retry, "503")])
            await events.release(tx, [second.event_id])
        await _add(database, ("s-3", "s", NOW + timedelta(seconds=1)), ("t-1", "t", NOW + timedelta(seconds=1)))
        async with database.reading() as tx:
            due_at = {row[0]: row[1] for row in await tx.fetch(Sql("SELECT event_id, next_attempt_at FROM events"))}
        assert {event_id: parse_time(at) for event_id, at in due_at.items()} == {
            "s-1": retry, "s-2": retry, "s-3": retry, "t-1": NOW + timedelta(seconds=1)
        }
        assert await _claim(database, NOW + timedelta(seconds=1)) == ["t-1"]
        assert await _due(database, NOW + timedelta(seconds=1)) is False
        assert await _claim(database, retry) == ["s-1", "s-2", "s-3"]
    finally:
        await database.close()
