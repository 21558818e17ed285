"""Random sequences of service operations (create, grow, shrink, change tier, extend,
delete, expire, failed provisioning) against the real database: after every step the
capacity counters equal the sum of what live sessions hold, never exceed capacity, and
a session that has ended holds nothing once torn down."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from s2cvpn import errors
from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.errors import DriverUnavailable
from s2cvpn.jobs.worker import Worker
from s2cvpn.service import provisioning
from s2cvpn.service import sessions as session_service
from s2cvpn.storage.tables import JobRow, ResourceLoadRow, SessionRow
from tests.support.payloads import LISBON_CE, MADRID_CE, PORTO_CE, protected_request, session_request


class FakeClock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


CES = [LISBON_CE, PORTO_CE, MADRID_CE]
op = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(CES), st.integers(1, 700), st.sampled_from(["A", "AA", "AAA"]), st.booleans()),
    st.tuples(st.just("patch"), st.integers(0, 9), st.integers(1, 900), st.sampled_from(["A", "AA", "AAA"]), st.booleans()),
    st.tuples(st.just("extend"), st.integers(0, 9), st.just(0), st.just("A"), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 9), st.just(0), st.just("A"), st.booleans()),
    st.tuples(st.just("time"), st.integers(1, 90), st.just(0), st.just("A"), st.booleans()),
)


@pytest.fixture
def migrated(migrated_url: str) -> Settings:
    return Settings(database_url=migrated_url, retention_seconds=5, job_max_attempts=2, worker_poll_seconds=0.01)


async def _check(ctx: Any) -> None:
    day = ctx.clock.now().date()
    async with ctx.db() as db:
        counters = dict((await db.execute(select(ResourceLoadRow.resource_id, ResourceLoadRow.reserved_mbps))).all())
        unreleased = select(SessionRow.slot, SessionRow.allocation, SessionRow.plan).where(SessionRow.released_at.is_(None))
        placed = (await db.execute(unreleased)).all()
    sums: Counter[str] = Counter()
    for row in placed:  # a session holds its plan's demands until it is released
        sums.update(row.plan["demands"])
    for resource_id, reserved in counters.items():
        assert reserved == sums[resource_id], resource_id
        assert 0 <= reserved <= ctx.inventory.capacity_of(resource_id, day), resource_id
    assert set(sums) <= set(counters)
    # every session not yet released holds its own slot, the one its pools derive from
    assert all(row.slot is not None and row.slot == row.allocation["slot"] for row in placed)
    assert len({row.slot for row in placed}) == len(placed)


async def _drain(worker: Worker) -> None:
    for _ in range(20):
        ran = await worker.run_due_jobs()
        ran += await provisioning.expire_due(worker.ctx)
        if not ran:
            return


async def _scenario(config: Settings, operations: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    async with open_context(config, clock=clock, migrate_first=False) as ctx:
        async with ctx.db() as db, db.begin():  # each example starts from an empty network
            for table in (SessionRow, JobRow):
                await db.execute(delete(table))
            await db.execute(ResourceLoadRow.__table__.update().values(reserved_mbps=0))
        worker = Worker(ctx)
        created: list[str] = []
        fail_next = {"apply": False}
        real_apply = ctx.driver.apply

        def flaky_apply(spec: Any) -> None:
            if fail_next["apply"]:
                raise DriverUnavailable("injected failure")
            real_apply(spec)

        ctx.driver.apply = flaky_apply  # type: ignore[method-assign]
        for kind, a, b, sla, flag in operations:
            try:
                if kind == "create":
                    body = protected_request(bandwidth=b, sla=sla) if flag and a == LISBON_CE else session_request(ce=a, bandwidth=b, sla=sla)
                    body["duration"] = {"value": 1, "unit": "hours"}
                    fail_next["apply"] = sla == "AA" and flag  # some provisioning fails for good
                    row, _ = await session_service.create_session(ctx, client_id="c1", body=body, idempotency_key=None)
                    created.append(row.session_id)
                elif kind in ("patch", "extend", "delete") and created:
                    session_id = created[a % len(created)]
                    if kind == "patch":
                        changes = {"guaranteeBandwidth": b, "sla": sla}
                        await session_service.update_session(ctx, client_id="c1", session_id=session_id, changes=changes)
                    elif kind == "extend":
                        await session_service.extend_session(ctx, client_id="c1", session_id=session_id, duration={"value": 10, "unit": "minutes"})
                    else:
                        await session_service.delete_session(ctx, client_id="c1", session_id=session_id)
                elif kind == "time":
                    clock.moment += timedelta(minutes=a)
            except (errors.S2CError,):
                pass  # refused whole (422, 409, 404): the invariant must still hold
            await _check(ctx)
            for _ in range(3):  # failing jobs are retried after their backoff
                await _drain(worker)
                clock.moment += timedelta(seconds=2)
            fail_next["apply"] = False
            await _check(ctx)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=st.lists(op, min_size=3, max_size=14))
def test_invariant_holds_after_every_operation(migrated: Settings, operations: list[tuple[Any, ...]]) -> None:
    asyncio.run(_scenario(migrated, operations))
