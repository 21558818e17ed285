"""New sessions accepted below the service layer (``acceptance.Acceptances``), against two
counters with known capacities, for the storage tests of acceptance and withdrawal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from s2cvpn.storage.acceptance import Acceptances
from s2cvpn.storage.driver import Database, Sql, open_database
from s2cvpn.storage.session_store import SessionRecord
from tests.support.records import stored_session

CAPACITY = {"link-a": 1000, "port:x": 100}
_COUNTER = Sql("INSERT INTO resource_load (resource_id, reserved_mbps) VALUES (:resource, 0)")


@asynccontextmanager
async def database_with_counters(url: str) -> AsyncIterator[Database]:
    """The migrated database at ``url``, with an empty counter for each of ``CAPACITY``."""
    database = open_database(url)
    try:
        async with database.transaction() as tx:
            for resource in CAPACITY:
                await tx.execute(_COUNTER, resource=resource)
        yield database
    finally:
        await database.close()


def planned_session(n: int, *, slot: int, demands: dict[str, int]) -> SessionRecord:
    """Session ``n`` in pool slot ``slot``, planned to hold ``demands``."""
    return replace(stored_session(n, slot=slot), plan={"demands": demands})


async def accept(acceptances: Acceptances, database: Database, record: SessionRecord, key: str | None = None) -> bool:
    """``record`` accepted as the service does it: outside a transaction."""
    async with database.autocommit() as tx:
        return await acceptances.accept(tx, record, lambda rid: CAPACITY.get(rid, 1000), idempotency_key=key)
