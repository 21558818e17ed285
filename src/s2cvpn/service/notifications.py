"""CloudEvents about session status changes: written to the outbox in the transaction of
the change, delivered at least once with exponential backoff, stopped by a 410."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import aiohttp

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
DELIVERY_CONCURRENCY = 16  # sinks posted to at once by one worker
# a claim's lease, in post timeouts: its posts begin within the first, the last of them
# ends by the end of the second, and the outcomes are written in the third
LEASE_TIMEOUTS = 3
MAX_REPLY_BYTES = 65536  # a sink's reply read to keep its connection open
TOKEN_EXPIRED = "token expired"  # the outcome of an event whose sink's access token has expired: given up


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


async def deliver_due(ctx: ServiceContext, client: aiohttp.ClientSession, *, limit: int = 50) -> int:
    """Send every due event once; returns how many it claimed.

    Sessions are served side by side (one slow sink must not hold up the others), the
    events of one session one after the other, in the order they were written: a failed
    one that will be tried again holds back the rest of its session (``events._DUE`` keeps
    them back in later claims too). The outcomes are written together once all are known:
    one transaction for the batch, not one per event (a crash before it sends them again:
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
    in_flight = asyncio.Semaphore(DELIVERY_CONCURRENCY)
    outcomes: list[tuple[DueEvent, str]] = []

    async def deliver_in_order(events: list[DueEvent]) -> None:
        for event in events:
            async with in_flight:
                if time.monotonic() > last_start:
                    return
                outcome = await _send(ctx, client, event, now)
            outcomes.append((event, outcome))
            if outcome == "410" or _tried_again(ctx, event, outcome):
                return  # the rest are dropped with the session (410), or go after this one

    await asyncio.gather(*(deliver_in_order(events) for events in by_session.values()))
    posted = {event.event_id for event, _outcome in outcomes}
    await _record(ctx, outcomes, unposted=[event for event in due if event.event_id not in posted])
    return len(due)


def _tried_again(ctx: ServiceContext, event: DueEvent, outcome: str) -> bool:
    """Whether a post that did not deliver is repeated: not once the sink answered 410, was
    refused or its token expired, nor once the event's attempts are spent."""
    delivered = outcome.startswith("2")
    return not delivered and outcome not in ("410", "refused", TOKEN_EXPIRED) and event.attempts < ctx.settings.notify_max_attempts


async def _record(ctx: ServiceContext, outcomes: list[tuple[DueEvent, str]], *, unposted: list[DueEvent]) -> None:
    """Each event delivered, given up, or due again after its backoff; a sink that answered
    410 gets nothing more: its session is marked and its pending events dropped. The events
    not posted go back as they were."""
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
            retries.append((event, now + backoff(ctx, event.attempts), outcome))
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
