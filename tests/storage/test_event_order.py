"""The notification claim on both databases keeps each session's events in the order they
were written: an event waits while an earlier one of its session is leased (by a worker
that may have died holding it) or waiting for its retry, and is never taken ahead of an
earlier one; other sessions' events are not held up. On PostgreSQL, workers claiming at
the same moment never split a session between them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


from s2cvpn.storage import events
from s2cvpn.storage.driver import Database, Sql, open_database, parse_time
from tests.support.records import status_of

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=15)
_RETRY_AT = Sql("UPDATE events SET next_attempt_at = :at, attempts = 1 WHERE event_id = :event")


async def _add(database: Database, *queued: tuple[str, str, datetime]) -> None:
    async with database.transaction() as tx:
        for event_id, session_id, written in queued:
            await events.add_event(
                tx, event_id=event_id, row=status_of(session_id), sink="https://sink.example.com/", access_token=None,
                access_token_expires_at=None, now=written,
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
        assert sorted(await _claim(database, later)) == ["t-2", "u-1"]  # s-2 waits for s-1
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


async def test_two_workers_claiming_at_once_do_not_split_a_session(migrated_pg_url: str) -> None:
    """While one worker's claim holds the first event of a session (its transaction still
    open), a second worker's claim takes none of that session's events, though the first
    took only part of them (its batch was full): posted side by side, they could arrive
    out of order. PostgreSQL only: SQLite has one worker and one writer."""
    database = open_database(migrated_pg_url)
    try:
        await _add(database, ("s-1", "s", NOW - timedelta(seconds=3)), ("s-2", "s", NOW - timedelta(seconds=2)),
                   ("t-1", "t", NOW - timedelta(seconds=1)))
        async with database.transaction() as first:
            taken = await events.claim_due(first, now=NOW, lease=LEASE, limit=1)
            assert [event.event_id for event in taken] == ["s-1"]
            assert await _claim(database, NOW) == ["t-1"]  # s-2 is behind s-1, which the first holds
        assert await _claim(database, NOW) == []  # s-1 is leased now: s-2 still waits
    finally:
        await database.close()


async def test_workers_claiming_side_by_side_keep_each_session_in_order(migrated_pg_url: str) -> None:
    """Four workers on their own connections claim small batches and mark them done, over
    and over, until every event went out: no session is ever held by two of them at once,
    and each session's events go out in the order they were written."""
    database = open_database(migrated_pg_url)
    sessions = [f"s{n}" for n in range(4)]
    await _add(database, *((f"{session}-{k:02d}", session, NOW - timedelta(seconds=60 - k)) for k in range(25) for session in sessions))
    holding: dict[str, int] = {}
    sent: dict[str, list[str]] = {session: [] for session in sessions}

    async def work(worker: int) -> None:
        while True:
            async with database.transaction() as tx:
                claimed = await events.claim_due(tx, now=NOW, lease=LEASE, limit=1 + worker % 3)
            if not claimed:
                if not await _due(database, NOW) and all(len(out) == 25 for out in sent.values()):
                    return
                await asyncio.sleep(0)
                continue
            for session in {event.session_id for event in claimed}:
                assert session not in holding, f"{session} claimed by workers {holding[session]} and {worker} at once"
                holding[session] = worker
            for event in claimed:
                sent[event.session_id].append(event.event_id)
                await asyncio.sleep(0)  # posted, while the others claim
            for event in claimed:
                holding.pop(event.session_id, None)
            async with database.transaction() as tx:
                await events.mark_done(tx, {event.event_id: "204" for event in claimed}, now=NOW)

    try:
        await asyncio.wait_for(asyncio.gather(*(work(n) for n in range(4))), timeout=60)
    finally:
        await database.close()
    assert sent == {session: [f"{session}-{k:02d}" for k in range(25)] for session in sessions}
