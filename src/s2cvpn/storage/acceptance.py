"""New sessions' acceptance as one write: their rows, their provisioning jobs, their
Idempotency-Keys and the capacity their plans demand.

On PostgreSQL this is one statement (data-modifying CTEs), atomic alone, for any number of
sessions. Outside a transaction (``Database.autocommit``) the creates in flight share it
(``Acceptances``, through ``coalescing``): one is sent at once, and those that arrive while
it runs go together in the next. Under load a dozen creates then cost one round trip, one
statement and one commit, and take the counters' locks once instead of queueing for them a
dozen times. On SQLite, which has no data-modifying CTEs, the same writes run one after
another in the caller's transaction.

Each session gets one of three outcomes: everything written; nothing written because its
slot is held (the caller tries another); nothing kept because a counter has no room left
(``CapacityRace``: the caller's transaction, or PostgreSQL's statement, is undone).

PostgreSQL's statement takes its locks in the order the writes did as separate statements,
so that it forms no lock cycle with a delete or a teardown: the rows first (their slots,
which a session being deleted holds until that transaction ends), then the counters, in
sorted order (``FOR UPDATE``). It checks what all of its sessions demand together against
the locked counters, which hold the latest committed figures, and adds it only when
everything fits. When something does not, ``s2cvpn_refuse`` (migration 0007) undoes all of
it; so does a live twin (a unique key). A statement of several sessions that is undone is
retried one session at a time, and each session gets the outcome it would have had alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from s2cvpn.storage import idempotency, jobs, reservations, session_store
from s2cvpn.storage.coalescing import CoalescedQueries, together_or_one_by_one
from s2cvpn.storage.driver import POSTGRES, Database, Deadlock, Refused, Sql, Transaction, UniqueViolation
from s2cvpn.storage.session_store import SessionRecord

_ACCEPT = Sql(
    f"WITH inserted AS ({session_store.INSERT_MANY_TEXT} RETURNING session_id, client_id, created_at, plan"
    f"), demanded AS ({reservations.held_by('inserted')}"
    "), locked AS ("
    "  SELECT resource_id, reserved_mbps FROM resource_load"
    "  WHERE resource_id IN (SELECT resource_id FROM demanded) ORDER BY resource_id FOR UPDATE"
    "), fits AS ("
    "  SELECT count(*) = (SELECT count(*) FROM demanded) AND coalesce(bool_and(locked.reserved_mbps + demanded.mbps <= capacity.mbps), true) AS ok,"
    "         coalesce(min(resource_id) FILTER (WHERE locked.reserved_mbps + demanded.mbps > capacity.mbps), 'a missing counter') AS full_resource"
    "  FROM locked JOIN demanded USING (resource_id)"
    "  JOIN unnest(:resources::text[], :capacities::bigint[]) AS capacity(resource_id, mbps) USING (resource_id)"
    "), reserved AS ("
    "  UPDATE resource_load AS load SET reserved_mbps = load.reserved_mbps + demanded.mbps"
    "  FROM demanded WHERE load.resource_id = demanded.resource_id AND (SELECT ok FROM fits)"
    "), job AS ("
    "  INSERT INTO jobs (kind, session_id, payload, run_at, attempts, created_at)"
    "  SELECT 'provision', session_id, '{}'::json, created_at, 0, created_at FROM inserted"
    "), remembered AS ("
    "  INSERT INTO idempotency_keys (client_id, key, session_id, created_at)"
    "  SELECT inserted.client_id, keyed.key, session_id, inserted.created_at"
    "  FROM inserted JOIN unnest(:keyed::text[], :keys::text[]) AS keyed(session_id, key) USING (session_id)"
    ") SELECT session_id FROM inserted"
    "  WHERE CASE WHEN (SELECT ok FROM fits) THEN true ELSE s2cvpn_refuse((SELECT full_resource FROM fits)) END"
)


@dataclass(eq=False, frozen=True)
class _Acceptance:
    """One session to accept: its row, its key, and its demands' capacities today."""

    record: SessionRecord
    idempotency_key: str | None
    capacities: Mapping[str, int]


# a session's outcome, as a statement of several sessions hands it back: accepted, its slot
# held, or the error it raises
_Outcome = bool | Exception


class Acceptances:
    """Accepts new sessions; on PostgreSQL, outside a transaction, several in one statement."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._batches = CoalescedQueries(self._accept_batch, name="s2cvpn-acceptances") if database.dialect == POSTGRES else None

    async def accept(
        self, tx: Transaction, record: SessionRecord, capacity_of: Callable[[str], int], *, idempotency_key: str | None
    ) -> bool:
        """Write ``record`` (REQUESTED), its provisioning job and its ``idempotency_key``, and
        reserve what its plan demands (``record.held``). False when its slot is held by
        another session (nothing written); ``CapacityRace`` when a counter has no room for
        its demand; ``UniqueViolation`` when a live twin or a concurrent use of the key holds
        a unique key. Times are the record's ``created_at``."""
        if tx.dialect != POSTGRES:
            return await _accept_in_turn(tx, record, capacity_of, idempotency_key)
        acceptance = _Acceptance(record, idempotency_key, {rid: capacity_of(rid) for rid in record.held})
        if self._batches is not None and tx.per_statement:
            outcome = await self._batches.run(acceptance)
        else:  # in the caller's transaction (a quota's lock is held there)
            outcome = (await _accept_or_refuse(tx, (acceptance,)))[acceptance]
        if isinstance(outcome, Exception):
            raise outcome
        return bool(outcome)

    async def _accept_batch(self, batch: tuple[_Acceptance, ...]) -> dict[_Acceptance, _Outcome]:
        async with self._database.autocommit() as tx:
            return await _accept_or_refuse(tx, batch)


async def _accept_or_refuse(tx: Transaction, batch: Sequence[_Acceptance]) -> dict[_Acceptance, _Outcome]:
    """``batch`` accepted together, or one by one when that was undone."""

    def refusal(error: Exception) -> Exception:
        return reservations.CapacityRace(str(error)) if isinstance(error, Refused) else error

    return await together_or_one_by_one(
        batch, lambda some: _accept_together(tx, some), undone=(Refused, UniqueViolation, Deadlock), outcome_of=refusal
    )


async def _accept_together(tx: Transaction, batch: Sequence[_Acceptance]) -> dict[_Acceptance, _Outcome]:
    """All of ``batch`` in one statement: accepted, or slot held; raises when undone."""
    capacities: dict[str, int] = {}
    for acceptance in batch:
        capacities.update(acceptance.capacities)
    keyed = [acceptance for acceptance in batch if acceptance.idempotency_key]
    accepted = {
        row[0]
        for row in await tx.fetch(
            _ACCEPT,
            **session_store.column_arrays([acceptance.record for acceptance in batch]),
            resources=tuple(capacities),
            capacities=tuple(capacities.values()),
            keyed=tuple(acceptance.record.session_id for acceptance in keyed),
            keys=tuple(acceptance.idempotency_key for acceptance in keyed),
        )
    }
    return {acceptance: acceptance.record.session_id in accepted for acceptance in batch}


async def _accept_in_turn(tx: Transaction, record: SessionRecord, capacity_of: Callable[[str], int], idempotency_key: str | None) -> bool:
    """SQLite: the same writes, one statement after another in the caller's transaction."""
    if not await session_store.insert(tx, record):
        return False
    if idempotency_key:
        await idempotency.remember(tx, record.client_id, idempotency_key, record.session_id, record.created_at)
    await jobs.enqueue(tx, kind="provision", session_id=record.session_id, now=record.created_at)
    await reservations.reserve(tx, {}, record.held, capacity_of)
    return True
