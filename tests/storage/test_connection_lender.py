"""The PostgreSQL connection lender: its size, failed connections, and the order in which
it lends to the API's requests and to background work (the worker), on the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.jobs.worker import Worker
from s2cvpn.service import sessions as session_service
from s2cvpn.storage.driver import ConnectionLender, PostgresDatabase, Sql
from tests.support.databases import ADMIN_URL, postgres_reason
from tests.support.payloads import session_request

pytestmark = pytest.mark.postgres


@pytest.fixture
def admin_url() -> str:
    """The database the tests connect to, where no test writes."""
    reason = postgres_reason()
    if reason:
        pytest.skip(reason)
    return ADMIN_URL


@pytest.fixture
async def lender(admin_url: str) -> Any:
    """Three connections; background work patient enough that no test here runs into its
    patience."""
    lender = ConnectionLender(admin_url, 3, background_patience=60)
    yield lender
    await lender.close()


async def _waiting(borrow: Any) -> asyncio.Task[asyncpg.Connection]:
    """``borrow`` started, and seen still waiting for a connection."""
    task = asyncio.create_task(borrow)
    await asyncio.sleep(0.05)
    assert not task.done()
    return task


async def test_the_lender_never_opens_more_than_its_size_and_drops_failed_connections(admin_url: str) -> None:
    lender = ConnectionLender(admin_url, 3)
    opened: set[int] = set()
    busy = 0
    most_busy = 0

    async def read(n: int) -> int:
        nonlocal busy, most_busy
        connection = await lender.borrow()
        opened.add(id(connection))
        busy += 1
        most_busy = max(most_busy, busy)
        try:
            return int(await connection.fetchval("SELECT $1::int FROM pg_sleep(0.01)", n))
        finally:
            busy -= 1
            lender.give_back(connection, failed=False)

    assert await asyncio.gather(*(read(n) for n in range(30))) == list(range(30))
    assert most_busy == 3 and len(opened) == 3  # the 27 others waited and reused them

    # a failed connection is closed and its place goes to a waiter, which opens a new one
    held = [await lender.borrow() for _ in range(3)]
    waiting = asyncio.create_task(lender.borrow())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    lender.give_back(held[0], failed=True)
    fresh = await asyncio.wait_for(waiting, 5)
    assert held[0].is_closed() and fresh not in held and await fresh.fetchval("SELECT 1") == 1

    # a waiter cancelled while waiting takes nothing with it
    cancelled = asyncio.create_task(lender.borrow())
    await asyncio.sleep(0.05)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    for connection in (fresh, *held[1:]):
        lender.give_back(connection, failed=False)
    again = [await lender.borrow() for _ in range(3)]  # all three are lendable again
    assert len({id(connection) for connection in again}) == 3
    for connection in again:
        lender.give_back(connection, failed=False)
    await lender.close()
    assert all(connection.is_closed() for connection in again)


async def test_background_work_holds_all_connections_but_one(lender: ConnectionLender) -> None:
    """With two of three connections lent to background work, a third background borrow
    waits although a connection is idle; a request takes that one at once."""
    first = await lender.borrow(background=True)
    second = await lender.borrow(background=True)
    spare = await lender.borrow()
    lender.give_back(spare, failed=False)  # opened, idle

    third = await _waiting(lender.borrow(background=True))
    request = await asyncio.wait_for(lender.borrow(), 1)
    assert request is spare and not third.done()

    lender.give_back(first, failed=False, background=True)  # below its share again
    assert await asyncio.wait_for(third, 1) is first
    for connection, background in ((second, True), (first, True), (request, False)):
        lender.give_back(connection, failed=False, background=background)


@pytest.mark.parametrize("waited_out", [False, True], ids=["request-first", "background-past-its-patience-first"])
async def test_which_waiter_is_lent_the_next_connection(admin_url: str, waited_out: bool) -> None:
    """A request is lent the next connection before background work queued earlier; but
    background work that has waited its patience (``BACKGROUND_PATIENCE_SECONDS``) goes
    first, so that a busy API does not starve the worker."""
    lender = ConnectionLender(admin_url, 3, background_patience=0.5)
    held = [await lender.borrow() for _ in range(3)]
    background = await _waiting(lender.borrow(background=True))
    if waited_out:
        await asyncio.sleep(0.5)
    request = await _waiting(lender.borrow())
    first, second = (background, request) if waited_out else (request, background)

    lender.give_back(held[0], failed=False)
    assert await asyncio.wait_for(first, 1) is held[0]
    assert not second.done()
    lender.give_back(held[1], failed=False)
    assert await asyncio.wait_for(second, 1) is held[1]
    lender.give_back(held[0], failed=False, background=waited_out)
    lender.give_back(held[1], failed=False, background=not waited_out)
    lender.give_back(held[2], failed=False)
    await lender.close()


async def test_a_cancelled_background_borrower_gives_back_its_share(lender: ConnectionLender) -> None:
    """Cancelled while waiting, or just as a connection was handed to it: either way the
    background share it counted is free again."""
    held = [await lender.borrow(background=True) for _ in range(2)]
    late = await _waiting(lender.borrow(background=True))
    lender.give_back(held[0], failed=False, background=True)  # handed to ``late``...
    late.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await late
    again = await asyncio.wait_for(lender.borrow(background=True), 1)  # the share had room again
    assert again is held[0]
    lender.give_back(again, failed=False, background=True)
    lender.give_back(held[1], failed=False, background=True)


@pytest.mark.parametrize("behind_requests", [True, False], ids=["embedded", "alone"])
async def test_an_embedded_workers_statements_borrow_as_background_work_and_a_requests_do_not(
    migrated_pg_url: str, behind_requests: bool
) -> None:
    """The worker of ``s2cvpn serve`` (``behind_requests``); that of ``s2cvpn worker``, alone in
    its process, borrows as any other user: it would leave a connection unused."""
    borrowed: list[bool] = []
    async with open_context(Settings(database_url=migrated_pg_url, worker_poll_seconds=0.01), migrate_first=False) as ctx:
        assert isinstance(ctx.database, PostgresDatabase)
        lender = ctx.database.connections
        real_borrow = lender.borrow

        async def recorded(*, background: bool = False) -> asyncpg.Connection:
            borrowed.append(background)
            return await real_borrow(background=background)

        lender.borrow = recorded  # type: ignore[method-assign]
        record, _created = await session_service.create_session(ctx, client_id="c1", body=session_request(), idempotency_key=None)
        by_request = len(borrowed)
        applied = asyncio.Event()
        real_apply = ctx.driver.apply

        def apply(spec: Any) -> Any:
            applied.set()
            return real_apply(spec)

        ctx.driver.apply = apply  # type: ignore[method-assign]
        worker = Worker(ctx, behind_requests=behind_requests)
        await worker.start()
        await asyncio.wait_for(applied.wait(), 10)
        await worker.stop()
        async with ctx.database.reading() as tx:
            status = await tx.fetchval(Sql("SELECT status FROM sessions WHERE session_id = :session"), session=record.session_id)
    assert by_request >= 1 and not any(borrowed[:by_request])
    assert status == "AVAILABLE"
    worker_borrows = borrowed[by_request:-1]  # the last: the status read above
    assert len(worker_borrows) >= 2 and not borrowed[-1]
    assert all(worker_borrows) if behind_requests else not any(worker_borrows)
