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
    thresholds = gc.get_threshold()
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
        _tune_garbage_collector()
        yield ctx
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        await database.close()
        await engine.dispose()


# allocations between two collections of the youngest generation (CPython's default: 700)
YOUNG_GENERATION_THRESHOLD = 5000


def _tune_garbage_collector() -> None:
    """Keep what start-up built (modules, the inventory and its graph, about 140,000
    objects) out of the cyclic garbage collector's full passes: each pass walked them all
    and stopped the event loop for 65-75 ms, every few seconds under load, which set the
    API's p99 latency. They live as long as the process anyway.

    And collect the youngest generation less often. At CPython's 700 allocations, under
    concurrent requests it ran about every 15 requests, each time walking the objects of
    the requests in flight, which were still alive; most of a request's objects are freed by
    reference counting once it ends. The collector's time went from about 10.5 to 2.3 us a
    request (create+delete in-process, bench/HISTORY.md, twelfth round)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
