"""How much work the worker takes at once: a driver that does not block gets as many jobs
in hand as the API has requests in flight, so the embedded worker keeps pace with it; a
driver that blocks gets a few, as many as threads can run."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.jobs.worker import BLOCKING_DRIVER_JOBS, JOBS_IN_FLIGHT, Worker
from s2cvpn.service import sessions as session_service
from tests.support.payloads import session_request


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(database_url=migrated_url, worker_poll_seconds=0.01)


async def _queue_provisioning(ctx: Any, count: int) -> None:
    for n in range(count):
        body = session_request(bandwidth=1) | {"applicationServers": [{"ipv4Address": f"10.77.{n // 256}.{n % 256}/32"}]}
        await session_service.create_session(ctx, client_id="c1", body=body, idempotency_key=None)


def test_a_driver_that_does_not_block_gets_a_batch_as_large_as_the_api_load(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_context(settings, migrate_first=False) as ctx:
            assert not ctx.driver.blocks
            worker = Worker(ctx)
            assert worker.concurrency == JOBS_IN_FLIGHT
            await _queue_provisioning(ctx, JOBS_IN_FLIGHT + 10)
            assert await worker.run_due_jobs() == JOBS_IN_FLIGHT + 10  # one batch
            assert await worker.run_due_jobs() == 0

    asyncio.run(scenario())


def test_a_driver_that_blocks_runs_as_many_jobs_at_once_as_threads_serve(settings: Settings) -> None:
    in_flight, most = 0, 0
    lock = threading.Lock()

    async def scenario() -> None:
        async with open_context(settings.model_copy(update={"model_apply_delay_seconds": 0.05}), migrate_first=False) as ctx:
            assert ctx.driver.blocks
            real_apply = ctx.driver.apply

            def counted_apply(spec: Any) -> None:
                nonlocal in_flight, most
                with lock:
                    in_flight += 1
                    most = max(most, in_flight)
                try:
                    time.sleep(0.05)
                    real_apply(spec)
                finally:
                    with lock:
                        in_flight -= 1

            ctx.driver.apply = counted_apply  # type: ignore[method-assign]
            worker = Worker(ctx)
            assert worker.concurrency == BLOCKING_DRIVER_JOBS
            await _queue_provisioning(ctx, 3 * BLOCKING_DRIVER_JOBS)
            assert await worker.run_due_jobs() == 2 * BLOCKING_DRIVER_JOBS  # a batch of twice what runs at once
            assert await worker.run_due_jobs() == BLOCKING_DRIVER_JOBS

    asyncio.run(scenario())
    assert 1 < most <= BLOCKING_DRIVER_JOBS
