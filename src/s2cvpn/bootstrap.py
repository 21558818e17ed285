"""The composition root: builds a ``ServiceContext`` from settings (migrations, inventory,
engine, driver, capacity counters) for the API server, the worker and the CLI alike."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from s2cvpn.clock import Clock, SystemClock
from s2cvpn.config import Settings
from s2cvpn.drivers.registry import create_driver
from s2cvpn.network import planner
from s2cvpn.network.loader import load_inventory
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import migrate, reservations
from s2cvpn.storage.acceptance import Acceptances
from s2cvpn.storage.db import create_engine, read_connections, session_factory
from s2cvpn.storage.driver import open_database
from s2cvpn.storage.session_reads import SessionReader
from s2cvpn.storage.withdrawal import Withdrawals


@asynccontextmanager
async def open_context(settings: Settings, *, clock: Clock | None = None, migrate_first: bool = True) -> AsyncIterator[ServiceContext]:
    inventory = load_inventory(settings.inventory)  # a broken inventory stops start-up here, whole
    await asyncio.to_thread(planner.planner_for, inventory)  # graph precompute now, not on the first order
    if migrate_first:
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    database = open_database(settings.database_url, pool_size=settings.database_pool_size)
    try:
        ctx = ServiceContext(
            settings=settings,
            engine=engine,
            db=session_factory(engine),
            read_db=read_connections(engine),
            database=database,
            session_reads=SessionReader(database),
            loads=reservations.LoadReader(database),
            acceptances=Acceptances(database),
            withdrawals=Withdrawals(database),
            inventory=inventory,
            driver=create_driver(
                settings.driver, inventory, model_delay_seconds=settings.model_apply_delay_seconds, netns_prefix=settings.netns_prefix
            ),
            clock=clock or SystemClock(),
        )
        resource_ids = list(inventory.links) + [f"port:{a}" for a in inventory.attachments]
        async with ctx.db() as db, db.begin():
            await reservations.ensure_resources(db, resource_ids)
        _freeze_startup_objects()
        yield ctx
    finally:
        gc.unfreeze()
        await database.close()
        await engine.dispose()


def _freeze_startup_objects() -> None:
    """Keep what start-up built (modules, the inventory and its graph, about 140,000
    objects) out of the cyclic garbage collector's full passes: each pass walked them all
    and stopped the event loop for 65-75 ms, every few seconds under load, which set the
    API's p99 latency. They live as long as the process anyway."""
    gc.collect()
    gc.freeze()
