"""What every use case needs, built once at start-up and passed down explicitly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from s2cvpn.clock import Clock
from s2cvpn.config import Settings
from s2cvpn.drivers.base import NetworkDriver
from s2cvpn.network.inventory import Inventory


@dataclass
class ServiceContext:
    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker  # read-write transactions
    read_db: Callable[[], AbstractAsyncContextManager[AsyncConnection]]  # Core reads, autocommit
    inventory: Inventory
    driver: NetworkDriver
    clock: Clock
    # set when new work is written, so an embedded worker starts it without waiting a poll
    work_ready: asyncio.Event = field(default_factory=asyncio.Event)

    def session_url(self, session_id: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}{self.settings.api_prefix}/sessions/{session_id}"
