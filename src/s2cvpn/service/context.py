"""What every use case needs, built once at start-up and passed down explicitly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from s2cvpn.clock import Clock
from s2cvpn.config import Settings
from s2cvpn.drivers.base import Health, NetworkDriver, call_driver
from s2cvpn.network.inventory import Inventory
from s2cvpn.storage.acceptance import Acceptances
from s2cvpn.storage.driver import Database
from s2cvpn.storage.reservations import LoadReader
from s2cvpn.storage.session_reads import SessionReader
from s2cvpn.storage.withdrawal import Withdrawals


HEALTH_TTL_SECONDS = 2.0


@dataclass
class ServiceContext:
    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker  # read-write transactions through the ORM (the cold paths)
    read_db: Callable[[], AbstractAsyncContextManager[AsyncConnection]]  # Core reads, autocommit
    database: Database  # the session hot path's transactions, on the driver itself
    session_reads: SessionReader  # getSession/listSessions, on ``database``
    loads: LoadReader  # the load a create or a change plans on, on ``database``
    acceptances: Acceptances  # new sessions' writes, on ``database``
    withdrawals: Withdrawals  # deletes of live sessions, on ``database``
    inventory: Inventory
    driver: NetworkDriver
    clock: Clock
    # set when new work is written, so an embedded worker starts it without waiting a poll
    work_ready: asyncio.Event = field(default_factory=asyncio.Event)

    # the network's last health answer and when it was taken (monotonic seconds)
    network_health: tuple[float, Health] | None = None

    async def network_ready(self) -> Health:
        """The driver's health, asked at most every ``HEALTH_TTL_SECONDS`` (it may run commands)."""
        now = time.monotonic()
        if self.network_health is None or now - self.network_health[0] > HEALTH_TTL_SECONDS:
            self.network_health = (now, await call_driver(self.driver, "health"))
        return self.network_health[1]

    def session_url(self, session_id: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}{self.settings.api_prefix}/sessions/{session_id}"
