"""Deleting a session before its provisioning began: the network was never touched, so the
session is gone at once, with no teardown, even when a worker already holds the job (it
then finds the job gone and touches nothing). Once a worker has begun the provisioning
(even one attempt that failed, or one interrupted by a shutdown) the teardown runs as for
any other session."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.domain.session import Status, StatusInfo
from s2cvpn.errors import DriverUnavailable, NotFound, PermissionDenied
from s2cvpn.jobs.worker import Worker
from s2cvpn.service import provisioning
from s2cvpn.service import sessions as session_service
from s2cvpn.storage import jobs as job_store
from s2cvpn.storage import session_store
from s2cvpn.storage.driver import Sql
from s2cvpn.storage.tables import EventRow, JobRow, ResourceLoadRow
from tests.support.payloads import session_request

SINK = "https://sink.example.com/events"


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(database_url=migrated_url, worker_poll_seconds=0.01, sink_allow_private=True)


def _counted(ctx: Any, calls: Counter[str], *, fail_apply: bool = False) -> None:
    """Count the driver's apply and remove calls; ``fail_apply``: every apply fails."""
    real_apply, real_remove = ctx.driver.apply, ctx.driver.remove

    def apply(spec: Any) -> None:
        calls["apply"] += 1
        if fail_apply:
            raise DriverUnavailable("injected failure")
        real_apply(spec)

    def remove(session_id: str) -> None:
        calls["remove"] += 1
        real_remove(session_id)

    ctx.driver.apply, ctx.driver.remove = apply, remove  # type: ignore[method-assign]


async def _reserved(ctx: Any) -> int:
    async with ctx.db() as db:
        return sum((await db.scalars(select(ResourceLoadRow.reserved_mbps))).all())


async def _jobs(ctx: Any, session_id: str) -> list[JobRow]:
    async with ctx.db() as db:
        return list((await db.scalars(select(JobRow).where(JobRow.session_id == session_id))).all())


async def _create(ctx: Any, *, sink: str | None = None) -> str:
    body = session_request(bandwidth=25, sink=sink)
    row, _ = await session_service.create_session(ctx, client_id="c1", body=body, idempotency_key=None)
    return row.session_id


# without a sink, PostgreSQL deletes it in one statement (storage.withdrawal); with one, in
# the transaction that also queues the event
@pytest.mark.parametrize("sink", [None, SINK])
def test_a_session_deleted_before_any_worker_took_its_provisioning_is_gone_at_once(settings: Settings, sink: str | None) -> None:
    calls: Counter[str] = Counter()

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            _counted(ctx, calls)
            session_id = await _create(ctx, sink=sink)
            assert await _reserved(ctx) > 0
            await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
            with pytest.raises(NotFound):
                await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert await _jobs(ctx, session_id) == []  # neither the provisioning nor a teardown
            assert await _reserved(ctx) == 0  # what it reserved went back with the delete
            assert session_id not in ctx.driver.list_services()
            async with ctx.db() as db:
                events = list((await db.scalars(select(EventRow).where(EventRow.session_id == session_id))).all())
            # the consumer still hears that it ended
            assert [(e.status, e.status_info) for e in events] == (
                [(Status.UNAVAILABLE, StatusInfo.DELETE_REQUESTED)] if sink else []
            )
            assert await Worker(ctx).run_due_jobs() == 0

    asyncio.run(scenario())
    assert calls == Counter()  # the network was never touched


def test_a_session_whose_provisioning_was_attempted_is_torn_down(settings: Settings) -> None:
    calls: Counter[str] = Counter()

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            _counted(ctx, calls, fail_apply=True)
            session_id = await _create(ctx)
            assert await Worker(ctx).run_due_jobs() == 1  # the apply failed: a retry is queued, unclaimed
            [retry] = await _jobs(ctx, session_id)
            assert (retry.kind, retry.attempts, retry.locked_by) == ("provision", 1, None)
            await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
            row = await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert (row.status, row.status_info) == (Status.UNAVAILABLE, StatusInfo.DELETE_REQUESTED)
            assert [job.kind for job in await _jobs(ctx, session_id)] == ["teardown"]
            assert await _reserved(ctx) > 0  # held until the network is clean
            assert await Worker(ctx).run_due_jobs() == 1
            with pytest.raises(NotFound):
                await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert await _reserved(ctx) == 0

    asyncio.run(scenario())
    assert calls == Counter(apply=1, remove=1)


async def _claim(ctx: Any, worker_id: str = "w1") -> list[job_store.ClaimedJob]:
    async with ctx.database.transaction() as tx:
        return await job_store.claim(tx, worker_id=worker_id, now=ctx.clock.now(), lease=timedelta(seconds=30), limit=100)


@pytest.mark.parametrize("sink", [None, SINK])
def test_a_provisioning_claimed_but_not_begun_is_withdrawn(settings: Settings, sink: str | None) -> None:
    """The worker holds the job but its handler has not begun: the delete takes the job
    from under it (in one statement without a sink, on PostgreSQL), and the handler, when
    it comes, finds the job gone and touches nothing."""
    calls: Counter[str] = Counter()

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            _counted(ctx, calls)
            session_id = await _create(ctx, sink=sink)
            [job] = await _claim(ctx)
            await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
            with pytest.raises(NotFound):
                await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert await _jobs(ctx, session_id) == []
            assert await _reserved(ctx) == 0
            held = provisioning.HeldJob(job, "w1")
            await provisioning.run_job(ctx, held)
            assert (held.withdrawn, held.finished) == (True, None)

    asyncio.run(scenario())
    assert calls == Counter()


def test_a_provisioning_interrupted_by_a_shutdown_keeps_its_attempt(settings: Settings) -> None:
    """A job given back unstarted goes back as it was, attempt and all; one given back
    mid-run keeps its attempt. Whether a delete still withdraws it is for ``begun_at`` to
    say: one whose handler began is torn down."""

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx)
            for started, attempts_after in ((False, 0), (True, 1)):
                [job] = await _claim(ctx)
                assert job.attempts == 1  # counting this claim
                if started:  # the handler's first statement, then the shutdown
                    async with ctx.database.autocommit() as tx:
                        begun, row = await session_store.begin_job(tx, session_id, job_id=job.job_id, worker_id="w1", now=ctx.clock.now())
                    assert begun and row is not None and row.session_id == session_id
                async with ctx.database.transaction() as tx:
                    await job_store.release_lease(tx, job.job_id, "w1", started=started)
                [released] = await _jobs(ctx, session_id)
                assert (released.attempts, released.locked_by, released.begun_at is not None) == (attempts_after, None, started)
            await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
            assert [job.kind for job in await _jobs(ctx, session_id)] == ["teardown"]

    asyncio.run(scenario())


def test_a_handler_of_a_job_another_worker_holds_does_not_begin(settings: Settings) -> None:
    """``begin_job`` marks only the job the worker holds: after a lost lease the old
    holder's handler does nothing, and the job stays the new holder's, not begun."""

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx)
            [job] = await _claim(ctx)
            async with ctx.database.autocommit() as tx:
                assert await session_store.begin_job(tx, session_id, job_id=job.job_id, worker_id="w2", now=ctx.clock.now()) == (False, None)
            [kept] = await _jobs(ctx, session_id)
            assert (kept.locked_by, kept.begun_at) == ("w1", None)

    asyncio.run(scenario())


def test_deletes_racing_the_worker_leave_nothing_behind(settings: Settings) -> None:
    """Twenty sessions claimed by a worker; five handlers run first, then the twenty
    deletes and the other fifteen handlers all at once: each provisioning is either
    withdrawn (never applied) or begun (applied, then torn down). Afterwards every session
    is gone, the network holds nothing, every applied session was removed and no capacity
    is left reserved."""
    calls: Counter[str] = Counter()

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            _counted(ctx, calls)
            ids = [await _create(ctx) for _ in range(20)]
            claimed = await _claim(ctx)
            assert [job.session_id for job in claimed] == ids
            held = [provisioning.HeldJob(job, "w1") for job in claimed]

            async def delete(session_id: str) -> None:
                await session_service.delete_session(ctx, client_id="c1", session_id=session_id)

            async def run(job: provisioning.HeldJob) -> None:
                await provisioning.run_job(ctx, job)
                if not job.withdrawn and job.finished is None:
                    async with ctx.database.autocommit() as tx:
                        await job.done(tx)

            for job in held[:5]:
                await run(job)
            racing = [delete(session_id) for session_id in ids[:5]]
            for n, job in enumerate(held[5:]):  # each handler just before or just after its session's delete
                steps = (run(job), delete(ids[5 + n]))
                racing += steps if n % 2 else steps[::-1]
            await asyncio.wait_for(asyncio.gather(*racing), timeout=30)
            worker = Worker(ctx)
            while await worker.run_due_jobs():
                pass
            for session_id in ids:
                with pytest.raises(NotFound):
                    await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert await _reserved(ctx) == 0
            assert ctx.driver.list_services() == set()
            withdrawn = sum(job.withdrawn for job in held)
            assert withdrawn <= 15  # the five that ran first had begun
            assert calls["apply"] == 20 - withdrawn
            assert calls["remove"] >= calls["apply"]

    asyncio.run(scenario())


def test_another_clients_delete_changes_nothing(settings: Settings) -> None:
    """The one-statement delete checks the owner too: another client is refused (403) and
    the session keeps its provisioning job and its capacity."""

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx)
            reserved = await _reserved(ctx)
            with pytest.raises(PermissionDenied):
                await session_service.delete_session(ctx, client_id="c2", session_id=session_id)
            assert [job.kind for job in await _jobs(ctx, session_id)] == ["provision"]
            assert await _reserved(ctx) == reserved > 0
            row = await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert row.status == Status.REQUESTED

    asyncio.run(scenario())


def test_a_half_begun_provisioning_undoes_the_one_statement_delete(settings: Settings) -> None:
    """Two provisioning jobs, one never begun and one begun: the one-statement delete
    (PostgreSQL) drops the first, then finds the second and undoes itself; the transaction
    then tears the session down, as SQLite's does straight away."""

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx)
            async with ctx.database.transaction() as tx:
                await job_store.enqueue(tx, kind="provision", session_id=session_id, now=ctx.clock.now())
                await tx.execute(Sql("UPDATE jobs SET begun_at = :now WHERE job_id = (SELECT max(job_id) FROM jobs)"), now=ctx.clock.now())
            await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
            row = await session_service.get_session(ctx, client_id="c1", session_id=session_id)
            assert (row.status, row.status_info) == (Status.UNAVAILABLE, StatusInfo.DELETE_REQUESTED)
            assert [job.kind for job in await _jobs(ctx, session_id)] == ["teardown"]
            assert await _reserved(ctx) > 0  # held until the network is clean

    asyncio.run(scenario())


def test_concurrent_deletes_of_one_session_delete_it_once(settings: Settings) -> None:
    """Ten deletes of one session at once: one deletes it, the others find it gone (404);
    its capacity goes back exactly once and nothing of it is left."""

    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            session_id = await _create(ctx)

            async def delete() -> str:
                try:
                    await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
                except NotFound:
                    return "gone"
                return "deleted"

            outcomes = await asyncio.wait_for(asyncio.gather(*(delete() for _ in range(10))), timeout=20)
            assert sorted(outcomes) == ["deleted"] + ["gone"] * 9
            assert await _jobs(ctx, session_id) == []
            assert await _reserved(ctx) == 0

    asyncio.run(scenario())
