"""A new session's acceptance as one write: its row, its provisioning job, its
Idempotency-Key and the capacity its plan demands.

On PostgreSQL this is one statement (data-modifying CTEs), atomic alone. Outside a
transaction (``Database.autocommit``) it commits by itself, so a create costs no BEGIN
and COMMIT round trips, and its writes one round trip instead of three. On SQLite, which
has no data-modifying CTEs, the same writes run one after another in the caller's
transaction.

Both give the same three outcomes: everything written; nothing written because the slot
is held (the caller tries another); nothing kept because a counter has no room left
(``CapacityRace``: the caller's transaction, or PostgreSQL's statement, is undone).

PostgreSQL's statement takes its locks in the order the writes did as separate statements,
so that it forms no lock cycle with a delete or a teardown: the row first (its slot, which
a session being deleted holds until that transaction ends), then the counters, in sorted
order (``FOR UPDATE``). It checks the demands against the locked counters, which hold the
latest committed figures, and adds to them only when everything fits; when something
does not, ``s2cvpn_refuse`` (migration 0007) undoes the row, the job and the key with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from s2cvpn.storage import idempotency, jobs, reservations, session_store
from s2cvpn.storage.driver import POSTGRES, Refused, Sql, Transaction
from s2cvpn.storage.session_store import SessionRecord

_CHANGES = "unnest(:resources::text[], :mbps::bigint[], :capacities::bigint[]) AS change(resource_id, mbps, capacity)"
_ACCEPT = Sql(
    f"WITH inserted AS ({session_store.INSERT_TEXT}), "
    "locked AS ("
    "  SELECT resource_id, reserved_mbps FROM resource_load"
    "  WHERE resource_id = ANY(:resources::text[]) AND EXISTS (SELECT 1 FROM inserted) ORDER BY resource_id FOR UPDATE"
    "), fits AS ("
    "  SELECT count(*) = cardinality(:resources::text[]) AND coalesce(bool_and(locked.reserved_mbps + change.mbps <= change.capacity), true) AS ok,"
    "         coalesce(min(change.resource_id) FILTER (WHERE locked.reserved_mbps + change.mbps > change.capacity), 'a missing counter') AS full_resource"
    f"  FROM locked JOIN {_CHANGES} USING (resource_id)"
    "), reserved AS ("
    "  UPDATE resource_load AS load SET reserved_mbps = load.reserved_mbps + change.mbps"
    f"  FROM {_CHANGES} WHERE load.resource_id = change.resource_id AND (SELECT ok FROM fits)"
    "), job AS ("
    "  INSERT INTO jobs (kind, session_id, payload, run_at, attempts, created_at)"
    "  SELECT 'provision', session_id, '{}'::json, :now::timestamptz, 0, :now FROM inserted"
    "), remembered AS ("
    "  INSERT INTO idempotency_keys (client_id, key, session_id, created_at)"
    "  SELECT :client_id, :idempotency_key::text, session_id, :now::timestamptz FROM inserted WHERE :idempotency_key::text IS NOT NULL"
    ") SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM inserted) THEN false WHEN (SELECT ok FROM fits) THEN true"
    "  ELSE s2cvpn_refuse((SELECT full_resource FROM fits)) END"
)


async def accept(
    tx: Transaction,
    record: SessionRecord,
    demands: Mapping[str, int],
    capacity_of: Callable[[str], int],
    *,
    idempotency_key: str | None,
    now: datetime,
) -> bool:
    """Write ``record`` (REQUESTED), its provisioning job and its ``idempotency_key``, and
    reserve ``demands``. False when its slot is held by another session (nothing written);
    ``CapacityRace`` when a counter has no room for its demand; ``UniqueViolation`` when a
    live twin or a concurrent use of the key holds a unique key."""
    if tx.dialect == POSTGRES:
        changes = reservations.counter_changes({}, demands, capacity_of)
        try:
            return bool(
                await tx.fetchval(
                    _ACCEPT,
                    **session_store.columns(record),
                    resources=tuple(change["resource"] for change in changes),
                    mbps=tuple(change["delta"] for change in changes),
                    capacities=tuple(change["capacity"] for change in changes),
                    idempotency_key=idempotency_key,
                    now=now,
                )
            )
        except Refused as refused:
            raise reservations.CapacityRace(str(refused)) from None
    if not await session_store.insert(tx, record):
        return False
    if idempotency_key:
        await idempotency.remember(tx, record.client_id, idempotency_key, record.session_id, now)
    await jobs.enqueue(tx, kind="provision", session_id=record.session_id, now=now)
    await reservations.reserve(tx, {}, demands, capacity_of)
    return True
