"""CloudEvents about session status changes: written to the outbox in the transaction of
the change, delivered at least once with exponential backoff, stopped by a 410."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client import Gauge

from s2cvpn.domain.session import Status, serviced_hours
from s2cvpn.errors import InvalidArgument
from s2cvpn.service import sinks
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import events as event_store
from s2cvpn.storage import session_store
from s2cvpn.storage.driver import Transaction
from s2cvpn.storage.events import DueEvent, StatusOf
from s2cvpn.storage.session_store import SessionRecord

log = logging.getLogger(__name__)
EVENT_TYPE = "org.camaraproject.site-to-cloud-vpn.v0.session-status-changed"
MAX_BACKOFF_SECONDS = 300.0
DELIVERY_CONCURRENCY = 16  # posts in flight at once from one worker, across its rounds
# the fewest posts one sink may have in flight when other sinks have events too (``PostingSlots``)
SINK_SHARE_MIN = 4
# a claim's lease, in post timeouts: its posts begin within the first, the last of them
# ends by the end of the second, and the outcomes are written in the third
LEASE_TIMEOUTS = 3
MAX_REPLY_BYTES = 65536  # a sink's reply read to keep its connection open
TOKEN_EXPIRED = "token expired"  # the outcome of an event whose sink's access token has expired: given up
_NOT_THE_SINKS = ("410", "refused", TOKEN_EXPIRED)  # outcomes that end an event's delivery, and say nothing of its sink's health
SINKS_FAILING = Gauge("s2cvpn_sinks_failing", "Sinks this process's worker posts nothing to until their next try, after a failed post")
POSTS_IN_FLIGHT = Gauge("s2cvpn_notification_posts_in_flight", "Posts to sinks this process's worker has in flight (at most 16: all taken, delivery waits for slots)")
SINK_FAILING = "sink failing: "  # before the outcome of an event not posted, as its sink's last post failed
SINKS_REMEMBERED = 10_000  # failing sinks a worker keeps in mind (``SinkHealth``); those that failed least lately go first


def final_figures(row: StatusOf, now: datetime) -> dict[str, Any]:
    """``servicedDuration`` and the ``actual*`` values, as the API shows them."""
    until = row.ended_at or now
    figures: dict[str, Any] = {"servicedDuration": {"value": serviced_hours(row.started_at, until), "unit": "hours"}}
    for key, value in (row.actual or {}).items():
        if value is not None:
            figures[key] = value
    return figures


def status_event(ctx: ServiceContext, event: DueEvent) -> dict[str, Any]:
    """The CloudEvent posted for ``event``, rendered from what it tells: the same on every
    attempt, its ``id`` and ``time`` the event's own. An event written before revision 0009
    carries its CloudEvent."""
    if event.body is not None:
        return event.body
    data: dict[str, Any] = {"sessionId": event.session_id, "status": event.status}
    if event.status_info:
        data["statusInfo"] = event.status_info
    if event.status == Status.UNAVAILABLE:
        data.update(final_figures(event, event.created_at))
    return {
        "id": event.event_id,
        "source": ctx.session_url(event.session_id),
        "type": EVENT_TYPE,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


async def notify_status(tx: Transaction, ctx: ServiceContext, row: SessionRecord, now: datetime) -> None:
    """Queue the event for the row's current status, if it has a live sink."""
    if not row.sink or row.sink_gone:
        return
    credential = row.sink_credential or {}
    expires = credential.get("accessTokenExpiresUtc")
    await event_store.add_event(
        tx, event_id=str(uuid.uuid4()), row=row, sink=row.sink, access_token=credential.get("accessToken"),
        access_token_expires_at=datetime.fromisoformat(expires) if expires else None, now=now,
    )
    ctx.work_ready.set()


def backoff(ctx: ServiceContext, attempts: int) -> timedelta:
    return timedelta(seconds=min(ctx.settings.notify_backoff_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True, slots=True)
class SinkFailure:
    tries: int  # failed tries in a row
    retry_at: datetime  # not tried again before
    outcome: str  # the last try's


class SinkHealth:
    """A circuit breaker per sink, as one worker saw it. A sink whose post failed is not
    posted to again before its own backoff has passed (doubling with each failed try in a
    row): its events that come due meanwhile fail as its last post did, without a post
    (an attempt counted, tried again after their own backoff and not before the sink's
    next try). Then the sink is tried one post at a time until one gets through.

    Why: every tenant's events share a worker's claims and its posting slots. A tenant
    whose sink hangs had each of its events take a slot for a whole timeout, oldest first,
    so the events of every other tenant waited behind all of them: with a few hundred
    sessions, for minutes, and, once its retries came due faster than the slots could try
    them, for ever. Now such a sink costs one post per backoff."""

    def __init__(self) -> None:
        self._failing: dict[str, SinkFailure] = {}

    def failure(self, sink: str) -> SinkFailure | None:
        return self._failing.get(sink)

    def posted(self, ctx: ServiceContext, sink: str, outcome: str, now: datetime) -> None:
        """What a post to ``sink`` in the round that began at ``now`` says of the sink."""
        if outcome.startswith("2"):
            changed = self._failing.pop(sink, None) is not None  # on every delivery; rarely a change
        else:
            changed = outcome not in _NOT_THE_SINKS and self._failed(ctx, sink, outcome, now)
        if changed:
            SINKS_FAILING.set(len(self._failing))

    def _failed(self, ctx: ServiceContext, sink: str, outcome: str, now: datetime) -> bool:
        """Count a failed try; False when another post of the same round failed first (one try)."""
        failure = self._failing.get(sink)
        if failure is not None and failure.retry_at > now:
            return False
        tries = failure.tries + 1 if failure is not None else 1
        self._failing.pop(sink, None)  # (re)inserted last: the ones that failed least lately go first
        self._failing[sink] = SinkFailure(tries, now + backoff(ctx, tries), outcome)
        if len(self._failing) > SINKS_REMEMBERED:
            del self._failing[next(iter(self._failing))]
        return True


class PostingSlots:
    """The posts one worker has in flight, whichever of its delivery rounds they are of: at
    most ``DELIVERY_CONCURRENCY`` in all, and to one sink no more than its share. A sink has
    every slot when it is the only one with events in the rounds in flight, an equal share
    when other sinks have events there too (never fewer than ``SINK_SHARE_MIN``), and one
    when its last post failed (``health``). A slot freed goes to the oldest wait that may
    take it.

    Why shared: a round waits for its slowest post, so the worker begins the next round
    beside a slow one (``jobs.worker``). Slots of its own per round would give a slow sink
    whose posts are still in flight another share in each round, until it held them all."""

    def __init__(self) -> None:
        self.health = SinkHealth()
        self._posting: Counter[str] = Counter()  # posts in flight, per sink
        self._in_rounds: Counter[str] = Counter()  # rounds in flight with events of the sink
        self._waits: deque[tuple[str, asyncio.Future[None]]] = deque()  # oldest first
        self._waiting: Counter[str] = Counter()  # waits not yet handed a slot, per sink

    def free(self) -> int:
        return DELIVERY_CONCURRENCY - self._posting.total()

    @contextmanager
    def round_of(self, sinks_due: set[str]) -> Iterator[None]:
        """A round with events for ``sinks_due`` is in flight: each of them counts in the shares."""
        self._in_rounds.update(sinks_due)
        try:
            yield
        finally:
            for sink in sinks_due:
                _one_fewer(self._in_rounds, sink)

    @asynccontextmanager
    async def slot(self, sink: str) -> AsyncIterator[None]:
        """A post to ``sink`` may be in flight while this is held."""
        if self._waiting[sink] or not self._may_post(sink):
            await self._wait_for_slot(sink)
        else:
            self._take(sink)
        try:
            yield
        finally:
            self._give_back(sink)

    def _may_post(self, sink: str) -> bool:
        if self._posting.total() >= DELIVERY_CONCURRENCY:
            return False
        share = 1 if self.health.failure(sink) else max(SINK_SHARE_MIN, DELIVERY_CONCURRENCY // max(len(self._in_rounds), 1))
        return self._posting[sink] < share

    async def _wait_for_slot(self, sink: str) -> None:
        wait: tuple[str, asyncio.Future[None]] = (sink, asyncio.get_running_loop().create_future())
        self._waits.append(wait)
        self._waiting[sink] += 1
        try:
            await wait[1]
        except asyncio.CancelledError:
            if wait[1].cancelled():
                _one_fewer(self._waiting, sink)
            else:  # handed a slot just as it was cancelled: hand it on
                self._give_back(sink)
            raise
        finally:
            self._waits.remove(wait)

    def _hand_on(self) -> None:
        """Free slots to the oldest waits that may take them (a wait leaves the queue as it
        resumes)."""
        for sink, waiting in self._waits:
            if self._posting.total() >= DELIVERY_CONCURRENCY:
                return
            if not waiting.done() and self._may_post(sink):
                self._take(sink)
                _one_fewer(self._waiting, sink)
                waiting.set_result(None)

    def _take(self, sink: str) -> None:
        self._posting[sink] += 1
        POSTS_IN_FLIGHT.inc()

    def _give_back(self, sink: str) -> None:
        _one_fewer(self._posting, sink)
        POSTS_IN_FLIGHT.dec()
        self._hand_on()


def _one_fewer(counts: Counter[str], sink: str) -> None:
    """A sink at none leaves ``counts``: a worker meets many sinks over its life, and the
    shares count the sinks in ``_in_rounds``."""
    counts[sink] -= 1
    if not counts[sink]:
        del counts[sink]


async def deliver_due(ctx: ServiceContext, client: aiohttp.ClientSession, slots: PostingSlots, *, limit: int = 50) -> int:
    """Send every due event once; returns how many it claimed.

    Sessions are served side by side (one slow sink must not hold up the others), the
    events of one session one after the other, in the order they were written: a failed
    one that will be tried again holds back the rest of its session (``events._DUE`` keeps
    them back in later claims too). The posts take the worker's ``slots``; a sink whose post
    failed is not posted to again before its next try (``SinkHealth``), and its events due
    meanwhile take no slot. The outcomes are written together once all are known: one
    transaction for the batch, not one per event (a crash before it sends them again:
    delivery is at least once).
    """
    now = ctx.clock.now()
    # polled several times a second and almost always empty: a plain read says so without
    # the claim's write (on SQLite, the database's one write lock)
    async with ctx.database.reading() as tx:
        if not await event_store.any_due(tx, now):
            return 0
    timeout = ctx.settings.notify_timeout_seconds
    async with ctx.database.transaction() as tx:
        due = await event_store.claim_due(tx, now=now, lease=timedelta(seconds=timeout * LEASE_TIMEOUTS), limit=limit)
    # slow sinks can make a batch take longer than its lease (four waves of posts that time
    # out): a post that would begin after this could still run when another worker claims
    # its event, so it goes back unposted, to the next round
    last_start = time.monotonic() + timeout
    by_session: dict[str, list[DueEvent]] = {}
    for event in due:
        by_session.setdefault(event.session_id, []).append(event)
    health = slots.health
    outcomes: list[tuple[DueEvent, str]] = []

    def failing(sink: str) -> SinkFailure | None:
        failure = health.failure(sink)
        return failure if failure is not None and now < failure.retry_at else None

    async def deliver_in_order(events: list[DueEvent]) -> None:
        for event in events:
            failure = failing(event.sink)
            if failure is None:
                async with slots.slot(event.sink):
                    failure = failing(event.sink)  # (the try it waited for may have failed)
                    if failure is None:
                        if time.monotonic() > last_start:
                            return
                        outcome = await _send(ctx, client, event, now)
                        health.posted(ctx, event.sink, outcome, now)
            if failure is not None:  # no post: nothing to outlast the lease
                outcome = SINK_FAILING + failure.outcome
            outcomes.append((event, outcome))
            if outcome == "410" or _tried_again(ctx, event, outcome):
                return  # the rest are dropped with the session (410), or go after this one

    with slots.round_of({event.sink for event in due}):
        await asyncio.gather(*(deliver_in_order(events) for events in by_session.values()))
    settled = {event.event_id for event, _outcome in outcomes}
    await _record(ctx, health, outcomes, unposted=[event for event in due if event.event_id not in settled])
    return len(due)


def _tried_again(ctx: ServiceContext, event: DueEvent, outcome: str) -> bool:
    """Whether a post that did not deliver is repeated: not once the sink answered 410, was
    refused or its token expired, nor once the event's attempts are spent."""
    delivered = outcome.startswith("2")
    return not delivered and outcome not in _NOT_THE_SINKS and event.attempts < ctx.settings.notify_max_attempts


async def _record(ctx: ServiceContext, health: SinkHealth, outcomes: list[tuple[DueEvent, str]], *, unposted: list[DueEvent]) -> None:
    """Each event delivered, given up, or due again after its backoff (and not before its
    sink's next try); a sink that answered 410 gets nothing more: its session is marked and
    its pending events dropped. The events not posted go back as they were."""
    now = ctx.clock.now()
    gone = sorted({event.session_id for event, outcome in outcomes if outcome == "410"})
    done: dict[str, str] = {}
    retries: list[tuple[DueEvent, datetime, str]] = []
    for event, outcome in outcomes:
        if outcome.startswith("2"):
            done[event.event_id] = outcome
        elif outcome == "410":
            done[event.event_id] = "gone"
        elif _tried_again(ctx, event, outcome):
            failure = health.failure(event.sink)
            at = now + backoff(ctx, event.attempts)
            retries.append((event, max(at, failure.retry_at) if failure else at, outcome))
        else:
            done[event.event_id] = f"gave up: {outcome}"
            log.warning("notification %s for session %s abandoned: %s", event.event_id, event.session_id, outcome)
    async with ctx.database.transaction() as tx:
        # the sessions' rows first (in one order for every worker): each lock waits for a
        # transition that is queueing an event right now, so the drop (a later snapshot)
        # sees that event too
        for session_id in gone:
            await session_store.mark_sink_gone(tx, session_id)
            await event_store.drop_pending_for_session(tx, session_id, outcome="sink gone")
        await event_store.mark_done(tx, done, now=now)
        await event_store.mark_retry(tx, retries)
        await event_store.release(tx, [event.event_id for event in unposted if event.session_id not in gone])


async def _send(ctx: ServiceContext, client: aiohttp.ClientSession, event: DueEvent, now: datetime) -> str:
    """Post ``event``, unless its sink's access token has expired by ``now``: the consumer
    stops receiving events then (CAMARA), and the sink would only refuse it."""
    if event.access_token_expires_at is not None and event.access_token_expires_at <= now:
        return TOKEN_EXPIRED
    return await _post(ctx, client, event.sink, event.access_token, status_event(ctx, event))


async def _post(ctx: ServiceContext, client: aiohttp.ClientSession, sink: str, token: str | None, body: dict[str, Any]) -> str:
    """The sink's answer (its status code) or what kept it from answering."""
    try:
        sinks.check_sink(sink, allow_private=ctx.settings.sink_allow_private)
    except InvalidArgument:
        return "refused"
    headers = {"Content-Type": "application/cloudevents+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = aiohttp.ClientTimeout(total=ctx.settings.notify_timeout_seconds)
    try:
        async with client.post(sink, data=json.dumps(body).encode(), headers=headers, timeout=timeout, allow_redirects=False) as response:
            await _read_reply(response)
            return str(response.status)
    except aiohttp.ClientConnectorDNSError as exc:
        return "refused" if isinstance(exc.os_error, sinks.InternalAddress) else "dns"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def _read_reply(response: aiohttp.ClientResponse) -> None:
    """Read a short reply to its end, so its connection serves the next post; a longer one
    is left unread, and its connection is closed instead."""
    read = 0
    async for chunk in response.content.iter_any():
        read += len(chunk)
        if read > MAX_REPLY_BYTES:
            return
