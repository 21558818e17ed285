"""Sessions deleted before any worker began their provisioning, in one statement on
PostgreSQL (``Withdrawals``): the provisioning jobs dropped, the rows deleted and their
capacity given back.

This is the case where ``lifecycle.end`` needs no teardown (the network was never touched),
written as data-modifying CTEs so that the commonest delete costs one round trip instead of
six (BEGIN, the row lock, the job's cancel, the row's delete, the counters, COMMIT). The
deletes in flight share it (``coalescing``), as creates share their acceptance: under load
a dozen deletes cost one statement and one commit. It applies only when it can be sure:
the caller's own session, REQUESTED, with no sink to notify, and a provisioning job that no
worker has begun (``jobs.begun_at``), claimed or not. Anything else, it leaves to the
caller's transaction, which decides the same way with the row locked.

A row that another transaction holds locked is skipped, and its delete takes the caller's
path, which waits for it. Whoever holds a REQUESTED row is about to change it (a worker
starting the session, another delete), so it is seldom one this statement could take, and
the deletes that share the statement do not wait behind it.

Under concurrency it stays exact. A worker marks the job begun, in a statement that commits,
before it touches the network: a mark that comes first makes the job's DELETE find it begun,
and nothing is deleted; a mark that comes after finds no job, and the worker does nothing
(``session_store.begin_job``). If a row changed after its job was dropped, ``s2cvpn_refuse``
undoes the statement, and each session of it is tried alone. Its locks come in the order of
the transactions that change the same rows, so no lock cycle forms: the rows (as
``lifecycle.end`` locks one; several in the order of their ids), then the jobs, then the
counters in sorted order (as a create and a teardown take them).

SQLite has no data-modifying CTEs. Its transaction costs no round trips, so it always takes
the caller's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from s2cvpn.storage.coalescing import CoalescedQueries, together_or_one_by_one
from s2cvpn.storage.driver import POSTGRES, Database, Deadlock, Refused, Sql, Transaction
from s2cvpn.storage.jobs import NOT_BEGUN

_UNBUILT = "status = 'REQUESTED' AND sink IS NULL"
_PROVISION = "kind = 'provision'"
_UNTOUCHED = NOT_BEGUN  # no worker began it (one may hold it: it will find it gone)
_WITHDRAW = Sql(
    # the rows are locked before their jobs, as in every transaction that changes both
    "WITH target AS ("
    "  SELECT session_id FROM sessions JOIN unnest(:sessions::text[], :clients::text[]) AS wanted(session_id, client_id)"
    f"  USING (session_id, client_id) WHERE {_UNBUILT} ORDER BY session_id FOR UPDATE OF sessions SKIP LOCKED"
    "), cancelled AS ("
    f"  DELETE FROM jobs WHERE session_id IN (SELECT session_id FROM target) AND {_PROVISION} AND {_UNTOUCHED}"
    "  RETURNING session_id"
    "), gone AS ("
    f"  DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM cancelled) AND {_UNBUILT}"
    f"  AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.session_id = sessions.session_id AND {_PROVISION} AND NOT ({_UNTOUCHED}))"
    "  RETURNING session_id, plan"
    # what a REQUESTED session holds is its plan's demands (SessionRecord.held)
    "), demands AS ("
    "  SELECT demand.key AS resource_id, sum(demand.value::bigint) AS mbps"
    "  FROM gone, json_each_text(gone.plan -> 'demands') AS demand GROUP BY demand.key"
    "), locked AS ("
    "  SELECT resource_id FROM resource_load WHERE resource_id IN (SELECT resource_id FROM demands) ORDER BY resource_id FOR UPDATE"
    "), released AS ("
    "  UPDATE resource_load AS load SET reserved_mbps = load.reserved_mbps - demands.mbps FROM demands"
    "  WHERE load.resource_id = demands.resource_id AND (SELECT count(*) FROM locked) > 0"
    ") SELECT (SELECT coalesce(array_agg(session_id), '{}') FROM gone)"
    "  WHERE CASE WHEN (SELECT count(*) FROM gone) = (SELECT count(DISTINCT session_id) FROM cancelled) THEN true"
    "  ELSE s2cvpn_refuse('a session changed while its provisioning was being dropped') END"
)


@dataclass(eq=False, frozen=True)
class _Withdrawal:
    session_id: str
    client_id: str


class Withdrawals:
    """Withdraws sessions no worker began to build; on PostgreSQL, several in one statement."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._batches = CoalescedQueries(self._withdraw_batch, name="s2cvpn-withdrawals") if database.dialect == POSTGRES else None

    async def withdraw(self, session_id: str, client_id: str) -> bool:
        """Delete ``client_id``'s session ``session_id`` if it is REQUESTED, has no sink and
        no worker began its provisioning (claimed or not), giving its capacity back. False,
        having changed nothing, in any other case (always on SQLite): the caller then
        deletes it in a transaction."""
        if self._batches is None:
            return False
        return bool(await self._batches.run(_Withdrawal(session_id, client_id)))

    async def _withdraw_batch(self, batch: tuple[_Withdrawal, ...]) -> dict[_Withdrawal, bool]:
        async with self._database.autocommit() as tx:
            return await together_or_one_by_one(
                batch, lambda some: _withdraw_together(tx, some), undone=(Refused, Deadlock), outcome_of=lambda _error: False
            )


async def _withdraw_together(tx: Transaction, batch: Sequence[_Withdrawal]) -> dict[_Withdrawal, bool]:
    """All of ``batch`` in one statement; raises when undone. A session asked for twice is
    withdrawn for the first asker; the second is told it was not (it then finds it gone)."""
    gone = set(
        await tx.fetchval(
            _WITHDRAW,
            sessions=tuple(withdrawal.session_id for withdrawal in batch),
            clients=tuple(withdrawal.client_id for withdrawal in batch),
        )
    )
    outcomes: dict[_Withdrawal, bool] = {}
    for withdrawal in batch:
        outcomes[withdrawal] = withdrawal.session_id in gone
        gone.discard(withdrawal.session_id)
    return outcomes
