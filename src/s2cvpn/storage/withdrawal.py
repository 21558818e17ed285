"""A delete in one statement on PostgreSQL (``Withdrawals``), for the commonest case: the
caller's own live session. It does what ``lifecycle.end`` does in the delete's transaction:

- a session whose provisioning no worker has begun (``jobs.begun_at``), claimed or not, is
  gone at once: the provisioning job dropped, the row deleted, its capacity given back;
- any other is ended (UNAVAILABLE, DELETE_REQUESTED) and its teardown queued, which
  forgets it once the network is clean; a provisioning that runs is left to finish, one
  that waits for a retry is dropped;
- a session with a sink to notify gets its event, written from the row the statement
  locks (``events`` hold what an event tells; the worker renders it when it posts).

So a delete costs one round trip instead of six or seven (BEGIN, the row lock, the jobs'
cancel, the row's delete or update, the event, the counters or the teardown, COMMIT), and
the deletes in flight share it (``coalescing``), as creates share their acceptance: under
load a dozen deletes cost one statement and one commit. Anything else (a session already
ended, SQLite) it leaves to the caller's transaction.

A row that another transaction holds locked is skipped, and its delete takes the caller's
path, which waits for it. Whoever holds a live row is about to change it (a worker
starting the session, another delete), and the deletes that share the statement do not
wait behind it.

Under concurrency it stays exact. A worker marks the job begun, in a statement that commits,
before it touches the network: a mark that comes first makes the job's DELETE find it begun
(PostgreSQL re-checks the row it waited for), and the session is ended instead of deleted;
a mark that comes after finds no job, and the worker does nothing
(``session_store.begin_job``). If a row changed after its job was dropped, ``s2cvpn_refuse``
undoes the statement, and each session of it is tried alone. Its locks come in the order of
the transactions that change the same rows, so no lock cycle forms: the rows (as
``lifecycle.end`` locks one; several in the order of their ids), then the jobs, then the
counters in sorted order (as a create and a teardown take them).

SQLite has no data-modifying CTEs. Its transaction costs no round trips, so it always takes
the caller's path.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from s2cvpn.domain.session import Status, StatusInfo
from s2cvpn.storage import events, reservations
from s2cvpn.storage.coalescing import CoalescedQueries, together_or_one_by_one
from s2cvpn.storage.driver import POSTGRES, Database, Deadlock, Refused, Sql, Transaction
from s2cvpn.storage.jobs import RUNNING
from s2cvpn.storage.tables import LIVE_SESSION

_PROVISION = "kind = 'provision'"
_WITHDRAW = Sql(
    # a session asked for twice is taken once (the first asker's)
    "WITH wanted AS ("
    "  SELECT DISTINCT ON (session_id) * FROM unnest(:sessions::text[], :clients::text[], :nows::timestamptz[], :purges::timestamptz[])"
    "  WITH ORDINALITY AS wanted(session_id, client_id, now, purge_at, asked) ORDER BY session_id, asked"
    # the rows are locked before their jobs, as in every transaction that changes both
    "), target AS ("
    "  SELECT session_id, status, wanted.now, wanted.purge_at, sink, sink_gone, sink_credential->>'accessToken' AS token,"
    "  (sink_credential->>'accessTokenExpiresUtc')::timestamptz AS token_expires, started_at, actual"
    f"  FROM sessions JOIN wanted USING (session_id, client_id) WHERE {LIVE_SESSION} ORDER BY session_id FOR UPDATE OF sessions SKIP LOCKED"
    # what lifecycle.end's jobs.cancel drops: every provisioning but a running one
    "), cancelled AS ("
    f"  DELETE FROM jobs WHERE session_id IN (SELECT session_id FROM target) AND {_PROVISION} AND NOT ({RUNNING})"
    "  RETURNING session_id, begun_at"
    # REQUESTED, and its provisioning dropped before any worker began it: never built
    "), unbuilt AS ("
    f"  SELECT session_id FROM target WHERE status = '{Status.REQUESTED.value}'"
    "  AND session_id IN (SELECT session_id FROM cancelled)"
    "  AND session_id NOT IN (SELECT session_id FROM cancelled WHERE begun_at IS NOT NULL)"
    f"  AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.session_id = target.session_id AND {_PROVISION} AND {RUNNING})"
    "), gone AS ("
    f"  DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM unbuilt) AND status = '{Status.REQUESTED.value}'"
    "  RETURNING session_id, plan"
    # built, or being built: ended now, and torn down (then forgotten) by a worker
    "), ended AS ("
    f"  UPDATE sessions SET status = '{Status.UNAVAILABLE.value}', status_info = '{StatusInfo.DELETE_REQUESTED.value}',"
    "  ended_at = target.now, expires_at = target.now, purge_at = target.purge_at"
    "  FROM target WHERE sessions.session_id = target.session_id AND target.session_id NOT IN (SELECT session_id FROM unbuilt)"
    "  RETURNING sessions.session_id, target.now"
    # the teardown lifecycle.end queues for a delete: the row goes once the network is clean
    "), teardown AS ("
    "  INSERT INTO jobs (kind, session_id, payload, run_at, attempts, created_at)"
    "  SELECT 'teardown', session_id, '{\"delete\": true}'::json, now, 0, now FROM ended"
    # the sink's event, as lifecycle.end writes it (every target is gone or ended, or the
    # statement is undone)
    "), notified AS ("
    "  INSERT INTO events (event_id, session_id, sink, access_token, access_token_expires_at, status, status_info, started_at,"
    "  ended_at, actual, attempts, next_attempt_at, created_at)"
    f"  SELECT gen_random_uuid()::text, session_id, sink, token, token_expires, '{Status.UNAVAILABLE.value}', '{StatusInfo.DELETE_REQUESTED.value}',"
    f"  started_at, now, actual, 0, {events.due_behind_earlier('target.session_id', 'target.now')}, now"
    "  FROM target WHERE sink IS NOT NULL AND NOT sink_gone"
    f"), demands AS ({reservations.held_by('gone')}"
    "), locked AS ("
    "  SELECT resource_id FROM resource_load WHERE resource_id IN (SELECT resource_id FROM demands) ORDER BY resource_id FOR UPDATE"
    "), released AS ("
    "  UPDATE resource_load AS load SET reserved_mbps = load.reserved_mbps - demands.mbps FROM demands"
    "  WHERE load.resource_id = demands.resource_id AND (SELECT count(*) FROM locked) > 0"
    ") SELECT (SELECT coalesce(array_agg(session_id), '{}') FROM gone), (SELECT coalesce(array_agg(session_id), '{}') FROM ended)"
    "  WHERE CASE WHEN (SELECT count(*) FROM gone) = (SELECT count(*) FROM unbuilt) THEN true"
    "  ELSE s2cvpn_refuse('a session changed while its provisioning was being dropped') END"
)


class Withdrawn(enum.Enum):
    """What a delete's statement did with its session."""

    GONE = "gone"  # never built: deleted, its capacity given back
    ENDING = "ending"  # built or being built: ended, its teardown queued


@dataclass(eq=False, frozen=True)
class _Withdrawal:
    session_id: str
    client_id: str
    now: datetime
    purge_at: datetime


class Withdrawals:
    """Deletes sessions in one statement; on PostgreSQL, several at once."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._batches = CoalescedQueries(self._withdraw_batch, name="s2cvpn-withdrawals") if database.dialect == POSTGRES else None

    async def withdraw(self, session_id: str, client_id: str, *, now: datetime, purge_at: datetime) -> Withdrawn | None:
        """Delete ``client_id``'s live session ``session_id`` as ``lifecycle.end`` would: GONE
        when no worker began its provisioning, else ENDING (UNAVAILABLE, DELETE_REQUESTED,
        ended ``now``, purged at ``purge_at``, a teardown queued); either way its sink's
        event is queued.

        None, having changed nothing, in any other case (always on SQLite): the caller then
        deletes it in a transaction."""
        if self._batches is None:
            return None
        return await self._batches.run(_Withdrawal(session_id, client_id, now, purge_at))

    async def _withdraw_batch(self, batch: tuple[_Withdrawal, ...]) -> dict[_Withdrawal, Withdrawn | None]:
        async with self._database.autocommit() as tx:
            return await together_or_one_by_one(
                batch, lambda some: _withdraw_together(tx, some), undone=(Refused, Deadlock), outcome_of=lambda _error: None
            )


async def _withdraw_together(tx: Transaction, batch: Sequence[_Withdrawal]) -> dict[_Withdrawal, Withdrawn | None]:
    """All of ``batch`` in one statement; raises when undone. A session asked for twice is
    withdrawn for the first asker; the second is told it was not (it then finds it gone or
    ended)."""
    row = await tx.fetchrow(
        _WITHDRAW,
        sessions=tuple(withdrawal.session_id for withdrawal in batch),
        clients=tuple(withdrawal.client_id for withdrawal in batch),
        nows=tuple(withdrawal.now for withdrawal in batch),
        purges=tuple(withdrawal.purge_at for withdrawal in batch),
    )
    assert row is not None  # the statement returns one row, or raises
    done: dict[str, Withdrawn] = {session_id: Withdrawn.GONE for session_id in row[0]}
    done |= {session_id: Withdrawn.ENDING for session_id in row[1]}
    return {withdrawal: done.pop(withdrawal.session_id, None) for withdrawal in batch}
