"""The measurement pass writes what the driver measured into the ``actual`` figures of the
sessions still AVAILABLE, and leaves an ended session's figures as they were."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from s2cvpn.bootstrap import open_context
from s2cvpn.config import Settings
from s2cvpn.drivers.base import Measurement
from s2cvpn.service import measurements
from s2cvpn.storage import session_store
from tests.service.test_reservation_invariant import FakeClock
from tests.support.records import stored_session


class _Probe:
    """A driver that measures every session alike (what the netns driver's probes give)."""

    blocks = False

    def measure(self, session_id: str) -> Measurement:
        return Measurement(latency_ms=0.123456, packet_loss_rate=1.239, throughput_mbps=0.5, measured=True)


def test_available_sessions_get_measured_figures_ended_ones_keep_theirs(migrated_url: str) -> None:
    async def scenario() -> tuple[int, dict[str, Any]]:
        clock = FakeClock()
        async with open_context(Settings(database_url=migrated_url), clock=clock, migrate_first=False) as ctx:
            now = clock.now()
            planned = {"actualSla": "A", "actualLatency": 9.0, "actualGuaranteeBandwidth": 10}
            rows = {
                "live": replace(stored_session(1), status="AVAILABLE", expires_at=now + timedelta(hours=1), actual=planned, bandwidth_mbps=25),
                "ended": replace(stored_session(2), status="UNAVAILABLE", ended_at=now, actual=planned),
            }
            async with ctx.database.transaction() as tx:
                for record in rows.values():
                    assert await session_store.insert(tx, record)
            ctx.driver = _Probe()  # type: ignore[assignment]
            stored = await measurements.refresh_measurements(ctx)
            async with ctx.database.reading() as tx:
                actual = {name: (await session_store.get(tx, record.session_id)).actual for name, record in rows.items()}  # type: ignore[union-attr]
            return stored, actual

    stored, actual = asyncio.run(scenario())
    assert stored == 1
    assert actual["live"] == {"actualSla": "A", "actualLatency": 0.1235, "actualGuaranteeBandwidth": 25, "actualPacketLossRate": 1.24}
    assert actual["ended"] == {"actualSla": "A", "actualLatency": 9.0, "actualGuaranteeBandwidth": 10}
