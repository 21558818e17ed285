"""Starting a session once its network is built (``lifecycle.start``): one guarded UPDATE
from REQUESTED, on the row as the provisioning read it when it began. These are the two
ways a REQUESTED row can change meanwhile: it is ended (deleted while the network was
being built), or its sink answers 410."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.domain.session import Status, StatusInfo
from s2cvpn.errors import NotFound
from s2cvpn.jobs.worker import Worker
from s2cvpn.service import provisioning
from s2cvpn.service import sessions as session_service
from s2cvpn.storage.tables import EventRow, JobRow, ResourceLoadRow, SessionRow
from tests.support.payloads import session_request

SINK = "https://sink.example.com/events"


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(database_url=migrated_url, worker_poll_seconds=0.01, sink_allow_private=True)


async def _create(ctx: Any, *, sink: str | None = None) -> str:
    row, _ = await session_service.create_session(ctx, client_id="c1", body=session_request(bandwidth=25, sink=sink), idempotency_key=None)
    return row.session_id


async def _events(ctx: Any, session_id: str) -> list[str]:
    async with ctx.db() as db:
        rows = (await db.scalars(select(EventRow).where(EventRow.session_id == session_id).order_by(EventRow.created_at))).all()
    return [row.status for row in rows]


def _after_driver_calls(monkeypatch: pytest.MonkeyPatch, then: Callable[[str], Awaitable[None]]) -> None:
    """Each driver call of the worker runs, then ``then(op)``: what ``then`` does after the
    apply happens between the provisioning's read of the row and the session's start."""
    real_driver = provisioning._driver

    async def driver_then(ctx: Any, op: str, *args: Any, cause: str = "job") -> Any:
        result = await real_driver(ctx, op, *args, cause=cause)
        await then(op)
        return result

    monkeypatch.setattr(provisioning, "_driver", driver_then)


async def _row(ctx: Any, session_id: str) -> SessionRow | None:
    async with ctx.db() as db:
        return await db.get(SessionRow, session_id)


def test_a_started_session_is_available_until_its_duration_is_served(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx, sink=SINK)
            assert await Worker(ctx).run_due_jobs() == 1
            row = await _row(ctx, session_id)
            assert row is not None and row.status == Status.AVAILABLE
            assert row.started_at is not None and row.expires_at - row.started_at == timedelta(hours=row.duration_hours)
            assert await _events(ctx, session_id) == ["AVAILABLE"]
            async with ctx.db() as db:
                assert (await db.scalars(select(JobRow))).all() == []

    asyncio.run(scenario())


@pytest.mark.parametrize("sink", [None, SINK])
def test_a_session_deleted_while_its_network_was_built_is_not_started(
    settings: Settings, sink: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete comes during the driver's apply: the start finds the session ended and
    writes nothing; the teardown the delete queued removes what was built."""
    calls: Counter[str] = Counter()

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx, sink=sink)

            async def count_and_delete(op: str) -> None:
                calls[op] += 1
                if op == "apply":
                    await session_service.delete_session(ctx, client_id="c1", session_id=session_id)

            _after_driver_calls(monkeypatch, count_and_delete)
            worker = Worker(ctx)
            assert await worker.run_due_jobs() == 1
            row = await _row(ctx, session_id)
            assert row is not None
            assert (row.status, row.status_info, row.started_at) == (Status.UNAVAILABLE, StatusInfo.DELETE_REQUESTED, None)
            async with ctx.db() as db:
                assert [job.kind for job in (await db.scalars(select(JobRow))).all()] == ["teardown"]
            assert await _events(ctx, session_id) == (["UNAVAILABLE"] if sink else [])
            assert await worker.run_due_jobs() == 1
            with pytest.raises(NotFound):
                await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert ctx.driver.list_services() == set()
            async with ctx.db() as db:
                assert sum((await db.scalars(select(ResourceLoadRow.reserved_mbps))).all()) == 0

    asyncio.run(scenario())
    assert calls == Counter(apply=1, remove=1)


def test_a_session_whose_sink_went_away_while_its_network_was_built_starts_without_an_event(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink answered 410 during the driver's apply, after the provisioning read the row:
    the session starts, and nothing is sent."""

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx, sink=SINK)

            async def sink_answers_410(_op: str) -> None:
                async with ctx.db() as db, db.begin():
                    await db.execute(update(SessionRow).where(SessionRow.session_id == session_id).values(sink_gone=True))

            _after_driver_calls(monkeypatch, sink_answers_410)
            assert await Worker(ctx).run_due_jobs() == 1
            row = await _row(ctx, session_id)
            assert row is not None and (row.status, row.sink_gone) == (Status.AVAILABLE, True)
            assert await _events(ctx, session_id) == []

    asyncio.run(scenario())
