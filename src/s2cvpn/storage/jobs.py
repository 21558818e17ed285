"""The durable job queue: rows written with the state change that needs them, claimed
under a lease so that a crashed worker's job is taken over once its lease runs out.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so concurrent workers never take the
same row; SQLite has one writer at a time, which gives the same guarantee. A running job's
lease is renewed by its worker (``renew``, a heartbeat), so a lease shorter than a slow
driver call still never lets a second worker run the job at the same time; only a worker
that stopped renewing (killed, partitioned) loses it.

A job is *begun* (``begun_at``) once its handler starts the work: the provisioning handler
marks it in its first statement (``session_store.begin_job``), before it touches the
network. Until then a delete may withdraw it, claimed or not (``cancel``); the
worker holding it then finds it gone and does nothing. A job is *running* while it is
begun and held.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from s2cvpn.storage.driver import Sql, Transaction, decode_row

_ENQUEUE = Sql(
    "INSERT INTO jobs (kind, session_id, payload, run_at, attempts, created_at) VALUES (:kind, :session, :payload, :now, 0, :now)"
)
NOT_BEGUN = "begun_at IS NULL"
# what a handler's first statement writes (``session_store.begin_job``): only the holder
# marks, and a retry keeps the time of the first beginning
MARK_BEGUN = "UPDATE jobs SET begun_at = coalesce(begun_at, :now) WHERE job_id = :job AND locked_by = :worker"
_OF_KIND = "session_id = :session AND kind = :kind"
RUNNING = f"NOT ({NOT_BEGUN}) AND locked_by IS NOT NULL"  # begun and held
# every job but a running one goes; each says when it began and whether one is running
# (SQLite 3.40 answers "IS NULL" wrongly in a DELETE's RETURNING: Python reads the time)
_CANCEL = Sql(
    f"DELETE FROM jobs WHERE {_OF_KIND} AND NOT ({RUNNING}) "
    f"RETURNING begun_at, EXISTS (SELECT 1 FROM jobs AS running WHERE {_OF_KIND} AND {RUNNING})"  # names: running's
)
_FINISH = Sql("DELETE FROM jobs WHERE job_id = :job")
_FINISH_LEASED = Sql("DELETE FROM jobs WHERE job_id = :job AND locked_by = :worker")


async def enqueue(tx: Transaction, *, kind: str, session_id: str | None, now: datetime, payload: dict[str, Any] | None = None) -> None:
    await tx.execute(_ENQUEUE, kind=kind, session=session_id, payload=payload or {}, now=now)


class ClaimedJob(NamedTuple):
    job_id: int
    kind: str
    session_id: str | None
    payload: dict[str, Any]
    attempts: int  # counting the one just claimed
    run_at: datetime


_CLAIM = Sql(
    "UPDATE jobs SET locked_until = :until, locked_by = :worker, attempts = attempts + 1 WHERE job_id IN ("
    "SELECT job_id FROM jobs WHERE run_at <= :now AND (locked_until IS NULL OR locked_until < :now) "
    "ORDER BY run_at, job_id LIMIT :limit {lock}) RETURNING job_id, kind, session_id, payload, attempts, run_at",
    lock="FOR UPDATE SKIP LOCKED",
)


async def claim(tx: Transaction, *, worker_id: str, now: datetime, lease: timedelta, limit: int) -> list[ClaimedJob]:
    """Lease up to ``limit`` due jobs to this worker, oldest first: one statement; rows
    another worker is claiming are skipped, not waited for (PostgreSQL)."""
    rows = await tx.fetch(_CLAIM, until=now + lease, worker=worker_id, now=now, limit=limit)
    claimed = [ClaimedJob(*decode_row(row, (3,), (5,))) for row in rows]
    return sorted(claimed, key=lambda job: (job.run_at, job.job_id))


async def cancel(tx: Transaction, session_id: str, kind: str) -> bool:
    """Drop the session's ``kind`` jobs but a running one (begun and held: it is left to
    finish), whether a worker holds them or not. True when jobs were dropped and none of
    them had begun, nor runs: what they were to do never started."""
    dropped = await tx.fetch(_CANCEL, session=session_id, kind=kind)
    return bool(dropped) and all(begun_at is None and not running for begun_at, running in dropped)


async def finish(tx: Transaction, job_id: int, worker_id: str | None = None) -> bool:
    """Delete a done job; with ``worker_id``, only while that worker still holds its lease."""
    if worker_id is None:
        return bool(await tx.execute(_FINISH, job=job_id))
    return bool(await tx.execute(_FINISH_LEASED, job=job_id, worker=worker_id))


_RENEW = Sql("UPDATE jobs SET locked_until = :until WHERE job_id = :job AND locked_by = :worker RETURNING job_id")
_RETRY_LATER = Sql(
    "UPDATE jobs SET run_at = :run_at, locked_until = NULL, locked_by = NULL, last_error = :error WHERE job_id = :job AND locked_by = :worker"
)
_RELEASE = Sql("UPDATE jobs SET locked_until = NULL, locked_by = NULL, attempts = attempts - :uncounted WHERE job_id = :job AND locked_by = :worker")


async def renew(tx: Transaction, job_ids: Iterable[int], worker_id: str, *, until: datetime) -> set[int]:
    """Extend the leases of running jobs (heartbeat); returns the ids this worker still holds."""
    renewals = [{"until": until, "job": job_id, "worker": worker_id} for job_id in job_ids]
    if not renewals:
        return set()
    return {row[0] for row in await tx.fetch_many(_RENEW, renewals)}


async def retry_later(tx: Transaction, job_id: int, *, run_at: datetime, error: str, worker_id: str) -> None:
    """Give a failed job back, to be run again at ``run_at`` (while ``worker_id`` holds it)."""
    await tx.execute(_RETRY_LATER, run_at=run_at, error=error[:2000], job=job_id, worker=worker_id)


async def release_lease(tx: Transaction, job_id: int, worker_id: str, *, started: bool) -> None:
    """Give a job back (graceful shutdown): the next worker takes it at once. One whose
    handler never started goes back unchanged; one that was interrupted keeps its attempt
    (of the retry budget). Whether a delete may still withdraw it is ``begun_at``'s to say."""
    await tx.execute(_RELEASE, uncounted=0 if started else 1, job=job_id, worker=worker_id)
