"""CloudEvents about session status changes: written to the outbox in the transaction of
the change, delivered at least once with exponential backoff, stopped by a 410."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from s2cvpn.domain.session import Status, serviced_hours
from s2cvpn.errors import InvalidArgument
from s2cvpn.service import sinks
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import events as event_store
from s2cvpn.storage import session_store
from s2cvpn.storage.driver import Transaction
from s2cvpn.storage.events import DueEvent
from s2cvpn.storage.session_store import SessionRecord

log = logging.getLogger(__name__)
EVENT_TYPE = "org.camaraproject.site-to-cloud-vpn.v0.session-status-changed"
MAX_BACKOFF_SECONDS = 300.0
DELIVERY_CONCURRENCY = 16  # sinks posted to at once by one worker


def final_figures(row: SessionRecord, now: datetime) -> dict[str, Any]:
    """``servicedDuration`` and the ``actual*`` values, as the API shows them."""
    until = row.ended_at or now
    figures: dict[str, Any] = {"servicedDuration": {"value": serviced_hours(row.started_at, until), "unit": "hours"}}
    for key, value in (row.actual or {}).items():
        if value is not None:
            figures[key] = value
    return figures


def status_event(ctx: ServiceContext, row: SessionRecord, now: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {"sessionId": row.session_id, "status": row.status}
    if row.status_info:
        data["statusInfo"] = row.status_info
    if row.status == Status.UNAVAILABLE:
        data.update(final_figures(row, now))
    return {
        "id": str(uuid.uuid4()),
        "source": ctx.session_url(row.session_id),
        "type": EVENT_TYPE,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": now.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


async def notify_status(tx: Transaction, ctx: ServiceContext, row: SessionRecord, now: datetime) -> None:
    """Queue the event for the row's current status, if it has a live sink."""
    if not row.sink or row.sink_gone:
        return
    body = status_event(ctx, row, now)
    token = (row.sink_credential or {}).get("accessToken")
    await event_store.add_event(tx, event_id=body["id"], session_id=row.session_id, sink=row.sink, access_token=token, body=body, now=now)
    ctx.work_ready.set()


def backoff(ctx: ServiceContext, attempts: int) -> timedelta:
    return timedelta(seconds=min(ctx.settings.notify_backoff_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


async def deliver_due(ctx: ServiceContext, client: httpx.AsyncClient, *, limit: int = 50) -> int:
    """Send every due event once; returns how many were attempted.

    Sessions are served side by side (one slow sink must not hold up the others), the
    events of one session one after the other, in order.
    """
    now = ctx.clock.now()
    # polled several times a second and almost always empty: a plain read says so without
    # the claim's write (on SQLite, the database's one write lock)
    async with ctx.database.reading() as tx:
        if not await event_store.any_due(tx, now):
            return 0
    async with ctx.database.transaction() as tx:
        due = await event_store.claim_due(tx, now=now, lease=timedelta(seconds=ctx.settings.notify_timeout_seconds * 3), limit=limit)
    by_session: dict[str, list[DueEvent]] = {}
    for event in due:
        by_session.setdefault(event.session_id, []).append(event)
    in_flight = asyncio.Semaphore(DELIVERY_CONCURRENCY)

    async def deliver_in_order(events: list[DueEvent]) -> None:
        for event in events:
            async with in_flight:
                if await _deliver(ctx, client, event) == "gone":
                    return  # the rest of this session's events were dropped with it

    await asyncio.gather(*(deliver_in_order(events) for events in by_session.values()))
    return len(due)


async def _deliver(ctx: ServiceContext, client: httpx.AsyncClient, event: DueEvent) -> str:
    outcome = await _post(ctx, client, event.sink, event.access_token, event.body)
    now = ctx.clock.now()
    async with ctx.database.transaction() as tx:
        if outcome.startswith("2"):
            await event_store.mark_done(tx, event.event_id, outcome=outcome, now=now)
        elif outcome == "410":
            # the session's row first: its lock waits for a transition that is queueing an
            # event right now, so the drop below (a later snapshot) sees that event too
            await session_store.mark_sink_gone(tx, event.session_id)
            await event_store.mark_done(tx, event.event_id, outcome="gone", now=now)
            await event_store.drop_pending_for_session(tx, event.session_id, outcome="sink gone")
            return "gone"
        elif event.attempts >= ctx.settings.notify_max_attempts or outcome == "refused":
            await event_store.mark_done(tx, event.event_id, outcome=f"gave up: {outcome}", now=now)
            log.warning("notification %s for session %s abandoned: %s", event.event_id, event.session_id, outcome)
        else:
            await event_store.mark_retry(tx, event.event_id, at=now + backoff(ctx, event.attempts), outcome=outcome)
    return outcome


async def _post(ctx: ServiceContext, client: httpx.AsyncClient, sink: str, token: str | None, body: dict[str, Any]) -> str:
    try:
        await sinks.resolve_public(sink, allow_private=ctx.settings.sink_allow_private)
    except InvalidArgument:
        return "refused"
    except OSError:
        return "dns"
    headers = {"Content-Type": "application/cloudevents+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = await client.post(sink, content=json.dumps(body).encode(), headers=headers, timeout=ctx.settings.notify_timeout_seconds)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return str(response.status_code)
