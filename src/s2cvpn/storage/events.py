"""The notification outbox: status events written with the status change they report.
Each holds what it tells (the session's status and figures as the change left them);
the worker renders the CloudEvent when it posts it (``notifications.status_event``).

``s2cvpn_notifications_total{result}`` counts outcomes as they are recorded here:
``delivered`` (the sink answered 2xx), ``gone`` (410), ``abandoned`` (retry budget spent
or sink refused), ``retry`` (a failed attempt that will be repeated). An event's ``id``
is chosen once, when it is written, so every retry sends the same CloudEvent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from prometheus_client import Counter

from s2cvpn.storage.driver import Sql, Transaction, decode_row

NOTIFICATIONS = Counter("s2cvpn_notifications", "Notification delivery outcomes recorded by this process", ["result"])


def _result(outcome: str) -> str:
    if outcome.startswith("2"):
        return "delivered"
    if outcome == "gone":
        return "gone"
    return "abandoned"


def due_behind_earlier(session: str, now: str) -> str:
    """When an event of ``session`` written at ``now`` is due: at once, or, when an earlier
    event of the session waits for its retry, with it (a retry moves the later ones along:
    ``mark_retry``). So the events held back behind a retry are not due meanwhile, and the
    poll and the claim do not read them again and again while a sink is down."""
    return (
        f"coalesce((SELECT max(earlier.next_attempt_at) FROM events AS earlier"
        f" WHERE earlier.session_id = {session} AND earlier.next_attempt_at > {now}), {now})"
    )


_ADD = Sql(
    "INSERT INTO events (event_id, session_id, sink, access_token, access_token_expires_at, status, status_info, started_at, ended_at,"
    " actual, attempts, next_attempt_at, created_at) VALUES (:event, :session, :sink, :token, :token_expires, :status, :status_info,"
    " :started, :ended, :actual, 0, "
    # (the cast: the parameter is one type for the column and for the comparison, on PostgreSQL)
    f"{due_behind_earlier('CAST(:session AS VARCHAR(36))', ':now')}, :now)"
)


_DUE_NOW = "next_attempt_at <= :now AND (locked_until IS NULL OR locked_until < :now)"
# an event of the same session, written before, still to go
_EARLIER_TO_GO = (
    "SELECT 1 FROM events AS earlier WHERE earlier.session_id = events.session_id AND earlier.created_at < events.created_at"
    " AND earlier.next_attempt_at IS NOT NULL"
)
# what ``claim_due`` takes: pending, due by :now, not leased (or its lease ran out), and no
# earlier event of its session still to go that is leased (by a worker that may have died)
# or waiting for its retry, or that the claim would take after it. A session's events thus
# reach its sink in the order they were written, across retries and crashes
_DUE = (
    f"{_DUE_NOW} AND NOT EXISTS ({_EARLIER_TO_GO}"
    " AND (earlier.next_attempt_at > events.next_attempt_at OR earlier.locked_until >= :now))"
)
# the first event of its session still to go: the claim takes a session's events only
# with it (``_CLAIM``)
_FIRST_TO_GO = f"NOT EXISTS ({_EARLIER_TO_GO})"
_ANY_DUE = Sql(f"SELECT 1 FROM events WHERE {_DUE} LIMIT 1")
_FORGET_FINISHED = Sql("DELETE FROM events WHERE created_at < :before AND next_attempt_at IS NULL")


async def any_due(tx: Transaction, now: datetime) -> bool:
    """Whether ``claim_due`` would find anything: a plain read, where the claim is a write
    (on SQLite, it takes the database's one write lock)."""
    return await tx.fetchrow(_ANY_DUE, now=now) is not None


async def forget_finished(tx: Transaction, before: datetime) -> None:
    """Drop the events created before ``before`` whose delivery is over (delivered, gone or
    abandoned); pending ones are kept however old."""
    await tx.execute(_FORGET_FINISHED, before=before)


class StatusOf(Protocol):
    """What a status event tells of its session: the row as the change left it."""

    @property
    def session_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def status_info(self) -> str | None: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def actual(self) -> dict[str, Any] | None: ...


async def add_event(
    tx: Transaction, *, event_id: str, row: StatusOf, sink: str, access_token: str | None, access_token_expires_at: datetime | None,
    now: datetime,
) -> None:
    await tx.execute(
        _ADD, event=event_id, session=row.session_id, sink=sink, token=access_token, token_expires=access_token_expires_at,
        status=row.status, status_info=row.status_info, started=row.started_at, ended=row.ended_at, actual=row.actual, now=now,
    )


class DueEvent(NamedTuple):
    """A claimed event: where it goes, what it tells (a ``StatusOf``), when it was written
    and its attempts counting this one. ``body``: the CloudEvent itself, for an event
    written before revision 0009 (the values are then None)."""

    event_id: str
    session_id: str
    sink: str
    access_token: str | None
    access_token_expires_at: datetime | None
    status: str | None  # None beside a body
    status_info: str | None
    started_at: datetime | None
    ended_at: datetime | None
    actual: dict[str, Any] | None
    body: dict[str, Any] | None
    attempts: int
    next_attempt_at: datetime
    created_at: datetime


# one statement, as the job queue claims (``jobs.claim``). It locks the first events of
# sessions that are due, skipping those another worker is claiming (PostgreSQL; SQLite has
# one writer at a time), and takes the due events of those sessions alone: two workers
# claiming at once never split a session between them. The first events are taken by due
# time alone, the order of its index: sorting every due event by (due, written) made a
# backlog of 40,000 cost 80-136 ms a claim, against 3-4 ms so (bench/HISTORY.md, eighteenth round)
_CLAIM = Sql(
    "UPDATE events SET locked_until = :until, attempts = attempts + 1 WHERE event_id IN ("
    f"SELECT event_id FROM events WHERE {_DUE} AND session_id IN ("
    f"SELECT session_id FROM events WHERE {_DUE_NOW} AND {_FIRST_TO_GO} ORDER BY next_attempt_at LIMIT :limit {{lock}}"
    ") ORDER BY next_attempt_at, created_at LIMIT :limit) "
    "RETURNING event_id, session_id, sink, access_token, access_token_expires_at, status, status_info, started_at, ended_at, actual,"
    " body, attempts, next_attempt_at, created_at",
    lock="FOR UPDATE SKIP LOCKED",
)
_DONE = Sql("UPDATE events SET next_attempt_at = NULL, locked_until = NULL, delivered_at = :now, outcome = :outcome WHERE event_id = :event")
_RETRY = Sql("UPDATE events SET next_attempt_at = :at, locked_until = NULL, outcome = :outcome WHERE event_id = :event")
_MOVE_LATER_ALONG = Sql("UPDATE events SET next_attempt_at = :at WHERE session_id = :session AND created_at > :written AND next_attempt_at < :at")
_RELEASE = Sql("UPDATE events SET locked_until = NULL, attempts = attempts - 1 WHERE event_id = :event")
_DROP_PENDING = Sql(
    "UPDATE events SET next_attempt_at = NULL, locked_until = NULL, outcome = :outcome, delivered_at = NULL "
    "WHERE session_id = :session AND next_attempt_at IS NOT NULL"
)


async def claim_due(tx: Transaction, *, now: datetime, lease: timedelta, limit: int) -> list[DueEvent]:
    """Lease up to ``limit`` due events, oldest first, and count an attempt for each. Of two
    events of one session, the one written first comes first."""
    rows = await tx.fetch(_CLAIM, until=now + lease, now=now, limit=limit)
    claimed = [DueEvent(*decode_row(row, (9, 10), (4, 7, 8, 12, 13))) for row in rows]
    return sorted(claimed, key=lambda event: (event.next_attempt_at, event.created_at))


async def mark_done(tx: Transaction, outcomes: Mapping[str, str], *, now: datetime) -> None:
    """Delivery is over for each event (its id -> how it ended); one round trip for all on
    PostgreSQL."""
    for outcome in outcomes.values():
        NOTIFICATIONS.labels(_result(outcome)).inc()
    if outcomes:
        await tx.execute_many(_DONE, [{"event": event_id, "outcome": outcome, "now": now} for event_id, outcome in outcomes.items()])


async def mark_retry(tx: Transaction, retries: Sequence[tuple[DueEvent, datetime, str]]) -> None:
    """Each event (the event, when, the failed attempt's outcome) is tried again at that
    time, and the later events of its session are not due before it."""
    NOTIFICATIONS.labels("retry").inc(len(retries))
    if retries:
        await tx.execute_many(_RETRY, [{"event": event.event_id, "at": at, "outcome": outcome} for event, at, outcome in retries])
        moves = [{"session": event.session_id, "written": event.created_at, "at": at} for event, at, _outcome in retries]
        await tx.execute_many(_MOVE_LATER_ALONG, moves)


async def release(tx: Transaction, event_ids: Sequence[str]) -> None:
    """Claimed events that were not posted (an earlier one of their session failed): their
    lease ends and their attempt is not counted."""
    if event_ids:
        await tx.execute_many(_RELEASE, [{"event": event_id} for event_id in event_ids])


async def drop_pending_for_session(tx: Transaction, session_id: str, *, outcome: str) -> None:
    await tx.execute(_DROP_PENDING, session=session_id, outcome=outcome)
