"""A delete on PostgreSQL in one statement (``storage.withdrawal``) does what the delete's transaction does (``lifecycle.end``), in every state a live session
can be in when it is deleted: its provisioning not claimed, claimed, begun and waiting for
a retry, running; or the session AVAILABLE; with no sink, a sink, or a sink that answered
410. Each case is set up twice, one session is deleted each way, and what is left of them
is compared: the row, its jobs, its events (as they are posted) and the capacity given
back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.service import lifecycle, notifications
from s2cvpn.service import sessions as session_service
from s2cvpn.storage.driver import Sql
from s2cvpn.storage.tables import EventRow, JobRow, ResourceLoadRow, SessionRow
from s2cvpn.storage.events import DueEvent
from s2cvpn.storage.withdrawal import Withdrawn
from tests.support.payloads import session_request

pytestmark = pytest.mark.postgres
_CLAIM = Sql("UPDATE jobs SET locked_by = 'w1', locked_until = :until WHERE session_id = :session")
_BEGUN_WAITING = Sql("UPDATE jobs SET begun_at = :now, attempts = 1, run_at = :until WHERE session_id = :session")
_RUNNING = Sql("UPDATE jobs SET begun_at = :now, attempts = 1, locked_by = 'w1', locked_until = :until WHERE session_id = :session")
_STARTED = Sql("DELETE FROM jobs WHERE session_id = :session")
_SINK_GONE = Sql("UPDATE sessions SET sink_gone = true WHERE session_id = :session")
STATES = ["unclaimed", "claimed", "begun and waiting", "running", "available"]
SINKS = ["no sink", "sink", "sink gone"]
SINK = {"sink": "https://sink.example.com/events", "sinkCredential": {"credentialType": "ACCESSTOKEN", "accessToken": "t-1",
        "accessTokenExpiresUtc": "2099-01-01T00:00:00Z", "accessTokenType": "bearer"}}


async def _in_state(ctx: Any, state: str, sink: str = "no sink") -> str:
    body = session_request(bandwidth=7, **({} if sink == "no sink" else SINK))
    row, _ = await session_service.create_session(ctx, client_id="c1", body=body, idempotency_key=None)
    now, until = ctx.clock.now(), ctx.clock.now() + timedelta(minutes=5)
    async with ctx.database.transaction() as tx:
        if state == "claimed":
            await tx.execute(_CLAIM, session=row.session_id, until=until)
        elif state == "begun and waiting":
            await tx.execute(_BEGUN_WAITING, session=row.session_id, now=now, until=until)
        elif state == "running":
            await tx.execute(_RUNNING, session=row.session_id, now=now, until=until)
        elif state == "available":
            await tx.execute(_STARTED, session=row.session_id)
            await lifecycle.start(tx, ctx, row, now)
        if sink == "sink gone":
            await tx.execute(_SINK_GONE, session=row.session_id)
    return row.session_id


async def _reserved(ctx: Any) -> int:
    async with ctx.db() as db:
        return sum((await db.scalars(select(ResourceLoadRow.reserved_mbps))).all())


async def _left(ctx: Any, session_id: str, deleted_at: Any) -> tuple[Any, ...]:
    """What is left of the session, its times as offsets from when it was deleted."""
    async with ctx.db() as db:
        row = await db.get(SessionRow, session_id)
        jobs = (await db.scalars(select(JobRow).where(JobRow.session_id == session_id))).all()
        events = (await db.scalars(select(EventRow).where(EventRow.session_id == session_id).order_by(EventRow.created_at))).all()
    found = sorted((job.kind, job.payload, job.begun_at is not None, job.locked_by, job.run_at - deleted_at) for job in jobs)
    told = [
        (event.sink, event.access_token, event.access_token_expires_at, _same_for_both(notifications.status_event(ctx, _due(event)), session_id),
         event.attempts, event.next_attempt_at - deleted_at)
        for event in events
    ]
    if row is None:
        return None, found, told
    times = tuple(None if at is None else at - deleted_at for at in (row.ended_at, row.expires_at, row.purge_at))
    return (row.status, row.status_info, row.released_at, times), found, told


def _due(event: EventRow) -> DueEvent:
    return DueEvent(**{field: getattr(event, field) for field in DueEvent._fields})


def _same_for_both(body: dict[str, Any], session_id: str) -> dict[str, Any]:
    """An event's body but for what differs between two sessions: its id and the session's."""
    return json.loads(json.dumps({key: value for key, value in body.items() if key != "id"}).replace(session_id, "<session>"))


class StoppedClock:
    """The time stands still: both deletes of a state happen at the same instant."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at


@pytest.mark.parametrize("sink", SINKS)
@pytest.mark.parametrize("state", STATES)
def test_the_statement_leaves_what_the_transaction_leaves(migrated_pg_url: str, state: str, sink: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = StoppedClock()

    async def scenario() -> None:
        async with open_context(Settings(database_url=migrated_pg_url, retention_seconds=30), clock=clock, migrate_first=False) as ctx:
            by_statement, by_transaction = await _in_state(ctx, state, sink), await _in_state(ctx, state, sink)
            clock.at += timedelta(seconds=1)
            left = {}
            for session_id, path in ((by_statement, "statement"), (by_transaction, "transaction")):
                before = await _reserved(ctx)
                with monkeypatch.context() as patched:
                    if path == "transaction":
                        patched.setattr(ctx.withdrawals, "withdraw", _left_to_the_transaction)
                    await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
                left[path] = (await _left(ctx, session_id, clock.at), before - await _reserved(ctx))
            assert left["statement"] == left["transaction"]
            gone = state in ("unclaimed", "claimed")
            (row, _jobs, told), given_back = left["statement"]
            assert (row is None) is gone
            assert (given_back > 0) is gone  # an ended session holds its capacity until its teardown
            told_of = [body["data"]["status"] for _sink, _token, _expires, body, _attempts, _due in told]
            assert {expires for _sink, _token, expires, *_rest in told} <= {datetime(2099, 1, 1, tzinfo=UTC)}  # the credential's
            # the sink heard of the start before it answered 410 (here), and of the end only if it did not
            started, ended = state == "available" and sink != "no sink", sink == "sink"
            assert told_of == ["AVAILABLE"] * started + ["UNAVAILABLE"] * ended

    asyncio.run(scenario())


async def _left_to_the_transaction(*_args: Any, **_kwargs: Any) -> None:
    return None


def test_every_delete_here_takes_the_statement(migrated_pg_url: str) -> None:
    """The comparison above compares the statement with something: each of its deletes is
    one the statement takes (counted at the statement itself), a sink to tell or not."""

    async def scenario() -> list[Any]:
        async with open_context(Settings(database_url=migrated_pg_url), migrate_first=False) as ctx:
            cases = [(state, sink, await _in_state(ctx, state, sink)) for sink in SINKS for state in STATES]
            now = ctx.clock.now()
            purge_at = lifecycle.purge_time(ctx, now)
            return [(state, sink, await ctx.withdrawals.withdraw(session_id, "c1", now=now, purge_at=purge_at)) for state, sink, session_id in cases]

    expected = {"unclaimed": Withdrawn.GONE, "claimed": Withdrawn.GONE}
    assert asyncio.run(scenario()) == [(state, sink, expected.get(state, Withdrawn.ENDING)) for sink in SINKS for state in STATES]
