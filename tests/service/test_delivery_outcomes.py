"""What one round of delivery records, on either database: the outcomes of a claimed batch
are written together once every post has answered, and each event ends as its sink
answered: delivered, due again after its backoff, given up once its attempts are spent, or
dropped with the rest of its session's events when a sink answers 410. A session's events
go in the order they were written: one that will be tried again holds back the rest of its
session, which go back unposted, their attempt not counted, due with that retry."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.jobs.worker import Worker
from s2cvpn.service import notifications, sinks
from s2cvpn.storage import events as event_store
from s2cvpn.storage import session_store
from s2cvpn.storage.driver import Sql
from s2cvpn.storage.tables import EventRow, SessionRow
from tests.service.test_reservation_invariant import FakeClock
from tests.support.records import status_of, stored_session
from tests.support.sink import Sink

_ATTEMPTED = Sql("UPDATE events SET attempts = :attempts WHERE event_id = :event")
MAX_ATTEMPTS = 3


def test_a_batch_ends_as_its_sinks_answered(fresh_database_url: str) -> None:
    with Sink() as fine, Sink() as failing, Sink() as gone:
        failing.answer, gone.answer = 503, 410
        ok, held, dropped, spent = (stored_session(n).session_id for n in (1, 2, 3, 4))
        # (event, session, sink, attempts before this round), oldest first: claimed in this
        # order, and each session's events are posted in it
        queued = [
            ("ok", ok, fine, 0),
            ("retried", held, failing, 0),
            ("held back", held, fine, 0),
            ("410", dropped, gone, 0),
            ("after-410", dropped, fine, 0),
            ("spent", spent, failing, MAX_ATTEMPTS - 1),
            ("after-spent", spent, fine, 0),
        ]
        settings = Settings(database_url=fresh_database_url, notify_max_attempts=MAX_ATTEMPTS, sink_allow_private=True)

        async def scenario() -> tuple[int, dict[str, Any], dict[str, bool], datetime]:
            clock = FakeClock()
            async with open_context(settings, clock=clock) as ctx, sinks.open_client(allow_private=True) as client:
                now = clock.now()
                async with ctx.database.transaction() as tx:
                    for n in (1, 2, 3, 4):
                        assert await session_store.insert(tx, stored_session(n))
                    for age, (event_id, session_id, sink, attempts) in enumerate(reversed(queued)):
                        await event_store.add_event(
                            tx, event_id=event_id, row=status_of(session_id), sink=f"{sink.url}/hook", access_token=None,
                            access_token_expires_at=None, now=now - timedelta(seconds=age + 1),
                        )
                        await tx.execute(_ATTEMPTED, attempts=attempts, event=event_id)
                sent = await notifications.deliver_due(ctx, client, notifications.PostingSlots())
                async with ctx.db() as db:
                    events = {
                        row.event_id: (row.outcome, row.next_attempt_at, row.delivered_at is not None, row.attempts)
                        for row in (await db.scalars(select(EventRow))).all()
                    }
                    sink_gone = {row.session_id: row.sink_gone for row in (await db.scalars(select(SessionRow))).all()}
                return sent, events, sink_gone, now

        sent, events, sink_gone, now = asyncio.run(scenario())
        retry_at = now + timedelta(seconds=settings.notify_backoff_seconds)  # a first failure waits the base backoff
        assert sent == len(queued)
        assert events == {
            "ok": ("204", None, True, 1),
            "retried": ("503", retry_at, False, 1),
            "held back": (None, retry_at, False, 0),  # claimed, not posted: due with the retry before it
            "410": ("gone", None, True, 1),
            "after-410": ("sink gone", None, False, 1),  # claimed, never posted
            "spent": ("gave up: 503", None, True, MAX_ATTEMPTS),
            "after-spent": ("204", None, True, 1),  # the one before it is over: it goes
        }
        assert sink_gone == {ok: False, held: False, dropped: True, spent: False}
        posted = {sink: [event["body"]["id"] for event in sink.received] for sink in (fine, failing, gone)}
        assert sorted(posted[fine]) == ["after-spent", "ok"]
        assert sorted(posted[failing]) == ["retried", "spent"]
        assert posted[gone] == ["410"]


def test_a_round_posts_no_event_that_could_outlast_its_lease(fresh_database_url: str) -> None:
    """A claim leases its events for three post timeouts. With slow sinks a batch of 50,
    16 at a time, took four waves of posts, longer than the lease: another worker could
    claim and post the last ones while this one still did. A post now begins only within
    the lease's first timeout; the events left go back unposted, their attempt not counted,
    and the next round posts them."""
    settings = Settings(database_url=fresh_database_url, notify_timeout_seconds=1.0, sink_allow_private=True)
    with contextlib.ExitStack() as stack:
        slow = [stack.enter_context(Sink(delay=0.8)) for _ in range(5)]  # enough sinks to fill every posting slot

        def received() -> list[str]:
            return [event["body"]["id"] for sink in slow for event in sink.received]

        async def scenario() -> tuple[int, list[tuple[int, bool]], list[str]]:
            clock = FakeClock()
            async with open_context(settings, clock=clock) as ctx, sinks.open_client(allow_private=True) as client:
                async with ctx.database.transaction() as tx:
                    for n in range(50):
                        await event_store.add_event(
                            tx, event_id=f"e-{n:02d}", row=status_of(f"s-{n:02d}"), sink=f"{slow[n % 5].url}/hook", access_token=None,
                            access_token_expires_at=None, now=clock.now(),
                        )
                assert await notifications.deliver_due(ctx, client, notifications.PostingSlots()) == 50
                first_round = len(received())
                async with ctx.db() as db:
                    left = [(row.attempts, row.locked_until is None) for row in (await db.scalars(select(EventRow))).all() if row.next_attempt_at]
                await notifications.deliver_due(ctx, client, notifications.PostingSlots())
                return first_round, left, received()

        first_round, left, in_all = asyncio.run(scenario())
    assert first_round == 2 * notifications.DELIVERY_CONCURRENCY  # two waves began within the first second
    assert left == [(0, True)] * (50 - first_round)
    assert sorted(in_all) == [f"e-{n:02d}" for n in range(50)]


def test_a_slow_sink_takes_no_more_than_its_share_of_the_posting_slots(fresh_database_url: str) -> None:
    """One consumer's sink answers slowly and has 45 events due; another's answers at once
    and has 5, written after them. Before, the slow sink's events took every posting slot,
    wave after wave, and the others' waited behind them past the round's last start. Now
    each sink with events in the round has an equal share of the slots (half, here), and
    the others' go at once."""
    settings = Settings(database_url=fresh_database_url, notify_timeout_seconds=1.0, sink_allow_private=True)
    with Sink(delay=0.6) as slow, Sink() as fast:

        async def scenario() -> None:
            clock = FakeClock()
            start = clock.now()
            async with open_context(settings, clock=clock) as ctx, sinks.open_client(allow_private=True) as client:
                await _queue(ctx, [(f"slow-{n:02d}", f"s-slow-{n:02d}", f"{slow.url}/hook", start - timedelta(seconds=100 - n)) for n in range(45)])
                await _queue(ctx, [(f"fast-{n}", f"s-fast-{n}", f"{fast.url}/hook", start - timedelta(seconds=10 - n)) for n in range(5)])
                assert await notifications.deliver_due(ctx, client, notifications.PostingSlots()) == 50

        asyncio.run(scenario())
        assert sorted(event["body"]["id"] for event in fast.received) == [f"fast-{n}" for n in range(5)]
        assert slow.most_in_flight == notifications.DELIVERY_CONCURRENCY // 2


def test_an_event_whose_sink_token_expired_is_not_sent(fresh_database_url: str) -> None:
    """CAMARA: once the sink's access token expires, the consumer stops receiving events.
    An event whose token has expired by the time it is due is not posted (its token would
    only be refused, retry after retry) and is given up, as are the later ones of its
    session; a session whose token is still good gets its events, with the token."""
    settings = Settings(database_url=fresh_database_url, sink_allow_private=True)
    with Sink() as sink:

        async def scenario() -> dict[str, tuple[str | None, int]]:
            clock = FakeClock()
            now = clock.now()
            async with open_context(settings, clock=clock) as ctx, sinks.open_client(allow_private=True) as client:
                async with ctx.database.transaction() as tx:
                    for event_id, session_id, token, expires in (
                        ("good", "s-good", "t-good", now + timedelta(hours=1)),
                        ("expired-1", "s-expired", "t-expired", now - timedelta(seconds=1)),
                        ("expired-2", "s-expired", "t-expired", now - timedelta(seconds=1)),
                    ):
                        await event_store.add_event(
                            tx, event_id=event_id, row=status_of(session_id), sink=f"{sink.url}/hook", access_token=token,
                            access_token_expires_at=expires, now=now - timedelta(seconds=len(event_id)),
                        )
                assert await notifications.deliver_due(ctx, client, notifications.PostingSlots()) == 3
                async with ctx.db() as db:
                    return {row.event_id: (row.outcome, row.attempts) for row in (await db.scalars(select(EventRow))).all() if not row.next_attempt_at}

        outcomes = asyncio.run(scenario())
    assert outcomes == {"good": ("204", 1), "expired-1": ("gave up: token expired", 1), "expired-2": ("gave up: token expired", 1)}
    assert [(event["body"]["id"], event["headers"]["authorization"]) for event in sink.received] == [("good", "Bearer t-good")]


async def _queue(ctx: Any, events: list[tuple[str, str, str, datetime]]) -> None:
    """(event, session, sink, written at), each event alone in its session or after the ones before it."""
    async with ctx.database.transaction() as tx:
        for event_id, session_id, sink, written in events:
            await event_store.add_event(
                tx, event_id=event_id, row=status_of(session_id), sink=sink, access_token=None, access_token_expires_at=None, now=written
            )


async def _pending(ctx: Any) -> dict[str, tuple[int, datetime | None, str | None]]:
    async with ctx.db() as db:
        return {row.event_id: (row.attempts, row.next_attempt_at, row.outcome) for row in (await db.scalars(select(EventRow))).all()}


def test_a_sink_that_hangs_holds_back_only_its_own_events(fresh_database_url: str) -> None:
    """One tenant's sink hangs; another's answers. Before, each of the hung sink's events
    took a posting slot for a whole timeout, oldest first, and the other tenant's events,
    written after them, waited until every one had been tried (with 40 of them, three
    rounds; with hundreds, minutes). Now, once a post to it has failed, the hung sink's
    events fail without a post until its next try, the next round delivers the other
    tenant's events, and the hung sink is tried one post at a time: once when it still
    hangs, and when it answers, all of its events go."""
    settings = Settings(database_url=fresh_database_url, notify_timeout_seconds=0.5, sink_allow_private=True)
    backoff = timedelta(seconds=settings.notify_backoff_seconds)
    with Sink(delay=3.0) as hung, Sink() as fine:

        async def scenario() -> None:
            clock = FakeClock()
            start = clock.now()
            slots = notifications.PostingSlots()
            async with open_context(settings, clock=clock) as ctx, sinks.open_client(allow_private=True) as client:

                async def rounds_until_none_due() -> None:
                    while await notifications.deliver_due(ctx, client, slots):
                        pass

                async def hung_events() -> set[tuple[int, datetime | None, str | None]]:
                    pending = await _pending(ctx)
                    return {pending[f"h-{n:02d}"] for n in range(40)}

                await _queue(ctx, [(f"h-{n:02d}", f"s-h-{n:02d}", f"{hung.url}/hook", start - timedelta(seconds=100 - n)) for n in range(40)])
                await _queue(ctx, [(f"f-{n}", f"s-f-{n}", f"{fine.url}/hook", start - timedelta(seconds=10 - n)) for n in range(5)])

                await notifications.deliver_due(ctx, client, slots)  # a wave of posts to the hung sink fails
                await notifications.deliver_due(ctx, client, slots)
                assert sorted(event["body"]["id"] for event in fine.received) == [f"f-{n}" for n in range(5)]
                await rounds_until_none_due()
                assert hung.arrived == notifications.DELIVERY_CONCURRENCY // 2  # its share: the other sink had events too
                # each of its events counts one attempt, those of the wave as posted, and all wait for its next try
                assert {event[:2] for event in await hung_events()} == {(1, start + backoff)}

                clock.moment = start + backoff  # its next try: one post, which hangs too
                await rounds_until_none_due()
                assert hung.arrived == notifications.DELIVERY_CONCURRENCY // 2 + 1
                assert {event[:2] for event in await hung_events()} == {(2, start + 3 * backoff)}  # the backoff doubled

                hung.delay = 0.0  # it answers again
                clock.moment = start + 3 * backoff
                await rounds_until_none_due()
                assert {event[1:] for event in await hung_events()} == {(None, "204")}

        asyncio.run(scenario())
        delivered = {event["body"]["id"] for event in hung.received}
    assert delivered == {f"h-{n:02d}" for n in range(40)}


def test_the_events_of_a_failing_sink_count_attempts_without_a_post(fresh_database_url: str) -> None:
    """Before a failing sink's next try, its due events are not posted: each fails as the
    sink's last post did, its attempt counted, and is tried again with the sink, or given
    up once its attempts are spent. Another sink's events go meanwhile."""
    settings = Settings(database_url=fresh_database_url, notify_max_attempts=MAX_ATTEMPTS, sink_allow_private=True)
    with Sink() as failing, Sink() as fine:

        async def scenario() -> dict[str, tuple[int, datetime | None, str | None]]:
            clock = FakeClock()
            now = clock.now()
            slots = notifications.PostingSlots()
            async with open_context(settings, clock=clock) as ctx, sinks.open_client(allow_private=True) as client:
                slots.health.posted(ctx, f"{failing.url}/hook", "503", now)
                await _queue(ctx, [
                    ("spent", "s-1", f"{failing.url}/hook", now - timedelta(seconds=3)),
                    ("waits", "s-2", f"{failing.url}/hook", now - timedelta(seconds=2)),
                    ("goes", "s-3", f"{fine.url}/hook", now - timedelta(seconds=1)),
                ])
                async with ctx.database.transaction() as tx:
                    await tx.execute(_ATTEMPTED, attempts=MAX_ATTEMPTS - 1, event="spent")
                assert await notifications.deliver_due(ctx, client, slots) == 3
                return await _pending(ctx)

        events = asyncio.run(scenario())
    retry_at = FakeClock().now() + timedelta(seconds=settings.notify_backoff_seconds)
    assert events == {
        "spent": (MAX_ATTEMPTS, None, "gave up: sink failing: 503"),
        "waits": (1, retry_at, "sink failing: 503"),
        "goes": (1, None, "204"),
    }
    assert failing.arrived == 0
    assert [event["body"]["id"] for event in fine.received] == ["goes"]


def test_a_round_waiting_for_a_slow_sink_holds_up_no_other_sinks_events(fresh_database_url: str) -> None:
    """A round waits for its slowest post. Before, the events of other sinks that came due
    while a slow sink's posts were in flight waited for the round to end: here 3 s, up to a
    post timeout. Now the worker begins the next round beside the slow one, and the other
    sink's event is posted while the slow posts are still in flight."""
    settings = Settings(database_url=fresh_database_url, notify_timeout_seconds=5.0, sink_allow_private=True)
    with Sink(delay=3.0) as slow, Sink() as fine:

        async def scenario() -> tuple[float, int]:
            async with open_context(settings) as ctx:
                worker = Worker(ctx)
                await worker.start()
                try:
                    await _queue(ctx, [(f"slow-{n}", f"s-slow-{n}", f"{slow.url}/hook", ctx.clock.now()) for n in range(3)])
                    await _until(lambda: slow.arrived == 3)
                    queued = time.monotonic()
                    await _queue(ctx, [("fine", "s-fine", f"{fine.url}/hook", ctx.clock.now())])
                    await _until(lambda: bool(fine.received))
                    return time.monotonic() - queued, len(slow.received)
                finally:
                    await worker.stop()

        waited, slow_answered = asyncio.run(scenario())
        assert slow_answered == 0  # the slow posts were still in flight
        assert waited < 2.0
        assert sorted(event["body"]["id"] for event in slow.received) == ["slow-0", "slow-1", "slow-2"]  # the stop waited for them


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within 10 s"
        await asyncio.sleep(0.02)
