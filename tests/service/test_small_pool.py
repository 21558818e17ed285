"""The session hot path on a pool of one connection (``Settings.database_pool_size``): no
use case holds a connection while it waits for another, so even one is enough for creates,
reads, changes, deletes, the assessment and the worker all at once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.errors import NotFound
from s2cvpn.jobs.worker import Worker
from s2cvpn.service import assessment
from s2cvpn.service import sessions as session_service
from s2cvpn.storage.driver import PostgresDatabase
from s2cvpn.storage.tables import JobRow, ResourceLoadRow
from tests.support.payloads import assessment_request, session_request


def test_everything_at_once_on_one_connection(migrated_url: str) -> None:
    sessions_seen: list[str] = []

    async def lifecycle(ctx, n: int) -> None:  # type: ignore[no-untyped-def]
        row, _ = await session_service.create_session(ctx, client_id="c1", body=session_request(bandwidth=5), idempotency_key=f"k{n}")
        sessions_seen.append(row.session_id)
        assert (await session_service.get_session(ctx, client_id="c1", session_id=row.session_id)).session_id == row.session_id
        if n % 3 == 0:  # some are provisioned first, then changed
            while (await session_service.get_session(ctx, client_id="c1", session_id=row.session_id)).status != "AVAILABLE":
                await asyncio.sleep(0.01)
            await session_service.update_session(ctx, client_id="c1", session_id=row.session_id, changes={"guaranteeBandwidth": 6})
        await session_service.delete_session(ctx, client_id="c1", session_id=row.session_id)

    async def scenario() -> None:
        settings = Settings(database_url=migrated_url, database_pool_size=1, worker_poll_seconds=0.01, retention_seconds=0)
        async with open_context(settings, migrate_first=False) as ctx:
            worker = Worker(ctx)
            await worker.start()
            try:
                assessed = asyncio.gather(*(assessment.assess(ctx, client_id="c1", body=assessment_request()) for _ in range(5)))
                listed = asyncio.gather(*(session_service.list_sessions(ctx, client_id="c1", page=1, per_page=20) for _ in range(5)))
                await asyncio.wait_for(asyncio.gather(*(lifecycle(ctx, n) for n in range(24)), assessed, listed), timeout=60)
                while True:  # the teardowns queued by the deletes
                    async with ctx.db() as db:
                        if not (await db.scalars(select(JobRow.job_id))).all():
                            break
                    await asyncio.sleep(0.02)
            finally:
                await worker.stop()
            sessions, total = await session_service.list_sessions(ctx, client_id="c1", page=1, per_page=50)
            assert (sessions, total) == ([], 0)
            async with ctx.db() as db:
                assert sum((await db.scalars(select(ResourceLoadRow.reserved_mbps))).all()) == 0
            assert ctx.driver.list_services() == set()
            with pytest.raises(NotFound):  # the refused delete, too, gives its connection back
                await session_service.delete_session(ctx, client_id="c1", session_id=sessions_seen[0])
            if isinstance(ctx.database, PostgresDatabase):
                assert ctx.database.connections._opened <= 1

    asyncio.run(scenario())

