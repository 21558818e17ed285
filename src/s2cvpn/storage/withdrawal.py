"""A session deleted before any worker began its provisioning, in one statement on
PostgreSQL (``withdraw``): the provisioning job dropped, the row deleted and its capacity
given back.

This is the case where ``lifecycle.end`` needs no teardown (the network was never touched),
written as data-modifying CTEs so that the commonest delete costs one round trip instead of
six (BEGIN, the row lock, the job's cancel, the row's delete, the counters, COMMIT). It
applies only when it can be sure: the caller's own session, REQUESTED, with no sink to
notify, and a provisioning job that no worker has begun (``jobs.begun_at``), claimed or not.
Anything else, it leaves to the caller's transaction, which decides the same way with the
row locked.

Under concurrency it stays exact. A worker marks the job begun, in a statement that commits,
before it touches the network: a mark that comes first makes the job's DELETE find it begun,
and nothing is deleted; a mark that comes after finds no job, and the worker does nothing
(``session_store.begin_job``). If the row changed
after the job was dropped, ``s2cvpn_refuse`` undoes the statement. Its locks come in the
order of the transactions that change the same rows, so no lock cycle forms: the row (as
``lifecycle.end`` locks it), then the job, then the counters in sorted order (as a create
and a teardown take them).

SQLite has no data-modifying CTEs. Its transaction costs no round trips, so it always takes
the caller's path.
"""

from __future__ import annotations

from s2cvpn.storage.driver import POSTGRES, Database, Refused, Sql
from s2cvpn.storage.jobs import NOT_BEGUN

_UNBUILT = "session_id = :session AND client_id = :client AND status = 'REQUESTED' AND sink IS NULL"
_PROVISION = "session_id = :session AND kind = 'provision'"
_UNTOUCHED = NOT_BEGUN  # no worker began it (one may hold it: it will find it gone)
_WITHDRAW = Sql(
    # the row is locked before its job, as in every transaction that changes both
    f"WITH target AS (SELECT session_id FROM sessions WHERE {_UNBUILT} FOR UPDATE"
    "), cancelled AS ("
    f"  DELETE FROM jobs WHERE {_PROVISION} AND {_UNTOUCHED} AND EXISTS (SELECT 1 FROM target) RETURNING job_id"
    "), gone AS ("
    f"  DELETE FROM sessions WHERE {_UNBUILT} AND EXISTS (SELECT 1 FROM cancelled)"
    f"  AND NOT EXISTS (SELECT 1 FROM jobs WHERE {_PROVISION} AND NOT ({_UNTOUCHED}))"
    "  RETURNING plan"
    # what a REQUESTED session holds is its plan's demands (SessionRecord.held)
    "), demands AS ("
    "  SELECT demand.key AS resource_id, demand.value::bigint AS mbps FROM gone, json_each_text(gone.plan -> 'demands') AS demand"
    "), locked AS ("
    "  SELECT resource_id FROM resource_load WHERE resource_id IN (SELECT resource_id FROM demands) ORDER BY resource_id FOR UPDATE"
    "), released AS ("
    "  UPDATE resource_load AS load SET reserved_mbps = load.reserved_mbps - demands.mbps FROM demands"
    "  WHERE load.resource_id = demands.resource_id AND (SELECT count(*) FROM locked) > 0"
    ") SELECT CASE WHEN EXISTS (SELECT 1 FROM gone) THEN true WHEN NOT EXISTS (SELECT 1 FROM cancelled) THEN false"
    "  ELSE s2cvpn_refuse('the session changed while its provisioning was being dropped') END"
)


async def withdraw(database: Database, session_id: str, client_id: str) -> bool:
    """Delete ``client_id``'s session ``session_id`` if it is REQUESTED, has no sink and no
    worker began its provisioning (claimed or not), giving its capacity back. False, having
    changed nothing, in any other case (always on SQLite): the caller then deletes it in a
    transaction."""
    if database.dialect != POSTGRES:
        return False
    async with database.autocommit() as tx:
        try:
            return bool(await tx.fetchval(_WITHDRAW, session=session_id, client=client_id))
        except Refused:
            return False
