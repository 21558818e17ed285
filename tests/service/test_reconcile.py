"""Reconciliation on the real database with the model network: AVAILABLE sessions the
network lost are re-applied, services no live session owns are removed, and the pass
reads the database in batches (a batch size of 2 here, so paging is exercised)."""

from __future__ import annotations

import uuid

import pytest

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.jobs.worker import Worker
from s2cvpn.service import provisioning
from s2cvpn.service import sessions as session_service
from tests.drivers.contract import spec_factory
from tests.service.test_reservation_invariant import FakeClock
from tests.support.payloads import LISBON_CE, MADRID_CE, PORTO_CE, session_request


async def test_reconcile_reapplies_what_was_lost_and_removes_what_nobody_owns(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provisioning, "RECONCILE_BATCH", 2)
    async with open_context(Settings(database_url=fresh_database_url), clock=FakeClock()) as ctx:
        created = []
        for ce in (LISBON_CE, PORTO_CE, MADRID_CE, LISBON_CE, PORTO_CE):
            row, _ = await session_service.create_session(ctx, client_id="c1", body=session_request(ce=ce), idempotency_key=None)
            created.append(row.session_id)
        worker = Worker(ctx)
        while await worker.run_due_jobs():
            pass
        assert ctx.driver.list_services() == set(created)

        lost = created[1:4]
        for session_id in lost:
            ctx.driver.remove(session_id)
        planted = {str(uuid.uuid4()) for _ in range(3)}
        for slot, session_id in enumerate(sorted(planted), start=100):
            ctx.driver.apply(spec_factory(ctx.inventory, session_id=session_id, slot=slot))

        counts = await provisioning.reconcile(ctx)
        assert counts == {"reapplied": 3, "removed": 3, "terminated": 0}
        assert ctx.driver.list_services() == set(created)
        assert await provisioning.reconcile(ctx) == {"reapplied": 0, "removed": 0, "terminated": 0}
