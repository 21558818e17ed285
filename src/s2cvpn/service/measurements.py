"""Real measurements for the ``actual*`` fields of AVAILABLE sessions.

The worker calls ``refresh_measurements`` every ``measure_interval_seconds``
(``run_periodically``). For each AVAILABLE session, in batches, it asks the driver to
measure the session (in a thread: drivers block) and, when the driver really measured
(``Measurement.measured``), stores into the row's ``actual``:

* ``actualLatency``: the measured one-way latency in ms (the driver's figure);
* ``actualPacketLossRate``: the measured loss in percent;
* ``actualGuaranteeBandwidth``: the bandwidth the network *enforces* for the session,
  i.e. the shaper rate, which is the session's ``guaranteeBandwidth`` as applied. The
  driver's ``throughput_mbps`` is what the session happened to carry during the probe
  window (near 0 for an idle customer); it says nothing about what is guaranteed, so it
  is never reported as the guarantee;
* ``actualSla``: the tier the session is carried with (availability is not something a
  few probes can measure).

A driver that cannot measure (the ``model`` driver answers ``measured=False``) leaves the
planned values in place, and the round stops at its first such answer. A session that
ends while being measured is not written: the row keeps the last values measured while it
was AVAILABLE, which is what the API shows after the end (frozen, like servicedDuration).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select

from s2cvpn.domain.session import Status
from s2cvpn.drivers.base import Measurement, call_driver
from s2cvpn.errors import DriverError
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import session_store
from s2cvpn.storage.tables import SessionRow

log = logging.getLogger(__name__)
BATCH = 100  # sessions read and written per transaction
CONCURRENCY = 4  # driver.measure calls in flight (each ~0.3-0.5 s of probes on netns)
MEASUREMENTS = Counter("s2cvpn_measurements", "Session measurements by this process, by result", ["result"])


async def refresh_measurements(ctx: ServiceContext) -> int:
    """Measure every AVAILABLE session once; return how many got measured values."""
    stored = 0
    after = ""
    slots = asyncio.Semaphore(CONCURRENCY)
    while True:
        async with ctx.read_db() as connection:  # no transaction: on SQLite, no write lock
            ids = list(
                (
                    await connection.scalars(
                        select(SessionRow.session_id)
                        .where(SessionRow.status == Status.AVAILABLE, SessionRow.session_id > after)
                        .order_by(SessionRow.session_id)
                        .limit(BATCH)
                    )
                ).all()
            )
        if not ids:
            return stored
        after = ids[-1]

        async def one(session_id: str) -> tuple[str, Measurement | None]:
            async with slots:
                try:
                    return session_id, await call_driver(ctx.driver, "measure", session_id)
                except DriverError as exc:  # not in the network (yet, or any more): skip it
                    log.debug("session %s not measured: %s", session_id, exc)
                    MEASUREMENTS.labels("failed").inc()
                    return session_id, None

        results = [(sid, m) for sid, m in await asyncio.gather(*(one(sid) for sid in ids)) if m is not None]
        if any(not m.measured for _sid, m in results):
            MEASUREMENTS.labels("unmeasurable").inc(len(results))
            return stored  # the driver gives planned values: the rows already hold them
        stored += await _store(ctx, dict(results))
        if len(ids) < BATCH:
            return stored


async def _store(ctx: ServiceContext, measured: dict[str, Measurement]) -> int:
    """Write the measured figures of the sessions still AVAILABLE (one that ended meanwhile
    keeps the values it ended with), on the driver's path: on SQLite an ORM transaction
    would hold the one write lock across its thread's hops while the API's writes wait."""
    if not measured:
        return 0
    async with ctx.database.transaction() as tx:
        actuals: dict[str, dict[str, Any]] = {}
        for session_id, sla, bandwidth_mbps, actual in await session_store.lock_available_actuals(tx, list(measured)):
            m = measured[session_id]
            figures = dict(actual or {})
            figures["actualSla"] = sla
            figures["actualGuaranteeBandwidth"] = bandwidth_mbps  # the enforced shaper rate
            if m.latency_ms is not None:
                figures["actualLatency"] = round(m.latency_ms, 4)
            if m.packet_loss_rate is not None:
                figures["actualPacketLossRate"] = round(m.packet_loss_rate, 2)
            actuals[session_id] = figures
        await session_store.set_actuals(tx, actuals)
    MEASUREMENTS.labels("stored").inc(len(actuals))
    return len(actuals)


async def run_periodically(ctx: ServiceContext, stopping: asyncio.Event) -> None:
    """The worker's measurement loop: a round every ``measure_interval_seconds`` until stopped."""
    interval = ctx.settings.measure_interval_seconds
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
            return
        except TimeoutError:
            pass
        try:
            stored = await refresh_measurements(ctx)
            if stored:
                log.debug("measured %d sessions", stored)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database or driver outage must not end the loop
            log.exception("measuring sessions failed")
