"""The ``sessions`` row on the driver-level write path (``storage.driver``): read it, lock
it, insert it, change some of its columns, forget it. The ORM's ``SessionRow`` maps the
same table for the cold paths (reconciliation, measurements)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql

from s2cvpn.domain.session import Status
from s2cvpn.storage.driver import POSTGRES, Sql, Transaction, decode_row, json_text, parse_time
from s2cvpn.storage.jobs import MARK_BEGUN
from s2cvpn.storage.session_reads import SessionView
from s2cvpn.storage.tables import HELD_SLOT, LIVE_SESSION, SessionRow


@dataclass(frozen=True, slots=True)
class SessionRecord(SessionView):
    """Every column of a session's row: the view's, then the ones the API never shows.
    Changes go through ``update``, which returns the new record."""

    purge_at: datetime | None
    sink: str | None
    sink_credential: dict[str, Any] | None
    sink_gone: bool
    plan: dict[str, Any] | None  # the planned paths; its "demands" are what the session holds
    dedup_key: str
    released_at: datetime | None
    slot: int | None  # the pool slot, held until released_at (see ``slots``)

    @property
    def held(self) -> dict[str, int]:
        """Mbps the session holds per resource (``reservations``)."""
        return held_by(self.plan, self.released_at)


def held_by(plan: dict[str, Any] | None, released_at: datetime | None) -> dict[str, int]:
    """What a session with ``plan`` holds: the plan's demands until its network is released."""
    if released_at is not None or not plan:
        return {}
    demands: dict[str, int] = plan.get("demands", {})
    return demands


_FIELDS = tuple(field.name for field in fields(SessionRecord))
_JSON = [_FIELDS.index(name) for name in ("request", "plan", "allocation", "actual", "sink_credential")]
_TIMES = [_FIELDS.index(name) for name in ("created_at", "started_at", "expires_at", "ended_at", "purge_at", "released_at")]
_SINK_GONE = _FIELDS.index("sink_gone")
_COLUMNS = ", ".join(_FIELDS)
_GET = f"SELECT {_COLUMNS} FROM sessions WHERE session_id = :session {{lock}}"
GET = Sql(_GET)
LOCK = Sql(_GET, lock="FOR UPDATE")
_DUE = "status = 'AVAILABLE' AND expires_at <= :now"  # served by ix_sessions_status_expires_at
EXPIRED = Sql(f"SELECT {_COLUMNS} FROM sessions WHERE {_DUE} ORDER BY expires_at LIMIT :limit {{lock}}", lock="FOR UPDATE SKIP LOCKED")
_ANY_EXPIRED = Sql(f"SELECT 1 FROM sessions WHERE {_DUE} LIMIT 1")
# an AVAILABLE row's measured figures, locked until they are written (PostgreSQL skips a row
# another transaction holds: it is ending or changing, and is measured next time)
_AVAILABLE_ACTUAL = Sql(
    f"SELECT session_id, sla, bandwidth_mbps, actual FROM sessions WHERE session_id = :session AND status = '{Status.AVAILABLE.value}' {{lock}}",
    lock="FOR UPDATE SKIP LOCKED",
)
_SET_ACTUAL = Sql("UPDATE sessions SET actual = :actual WHERE session_id = :session")
_MARK_SINK_GONE = Sql("UPDATE sessions SET sink_gone = true WHERE session_id = :session")
_NEXT_EXPIRY = Sql("SELECT expires_at FROM sessions WHERE status = 'AVAILABLE' ORDER BY expires_at LIMIT 1")
# ended, released and past retention; served by ix_sessions_purge_at. Another worker's
# batch is skipped, not waited for
_PURGE = Sql(
    "DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM sessions"
    " WHERE purge_at <= :now AND status = 'UNAVAILABLE' AND released_at IS NOT NULL LIMIT :limit {lock})",
    lock="FOR UPDATE SKIP LOCKED",
)
# a slot another session holds skips the insert (no row written); a live twin's key fails it
_INSERT = Sql(
    f"INSERT INTO sessions ({_COLUMNS}) VALUES ({', '.join(':' + name for name in _FIELDS)}) "
    f"ON CONFLICT (slot) WHERE {HELD_SLOT} DO NOTHING"
)
# several new sessions in one statement (PostgreSQL): a parameter per column, each an array
# of the column's type (``column_arrays``); slots are taken in ascending order, so that two
# such statements that want each other's slots wait in one direction only
_ARRAYS = ", ".join(f":{name}::{SessionRow.__table__.c[name].type.compile(postgresql.dialect())}[]" for name in _FIELDS)
INSERT_MANY_TEXT = (
    f"INSERT INTO sessions ({_COLUMNS}) SELECT {_COLUMNS} FROM unnest({_ARRAYS}) AS new ({_COLUMNS}) ORDER BY slot "
    f"ON CONFLICT (slot) WHERE {HELD_SLOT} DO NOTHING"
)
_LIVE_TWIN = Sql(f"SELECT 1 FROM sessions WHERE dedup_key = :key AND {LIVE_SESSION}")
_UPDATES: dict[tuple[str, ...], Sql] = {}


def decode(raw: Sequence[Any]) -> SessionRecord:
    values = decode_row(raw, _JSON, _TIMES)
    values[_SINK_GONE] = bool(values[_SINK_GONE])  # SQLite keeps 0/1
    return SessionRecord(*values)


async def get(tx: Transaction, session_id: str, *, lock: bool = False) -> SessionRecord | None:
    """The session's row; with ``lock``, locked until the transaction ends (PostgreSQL;
    SQLite's transactions already exclude every other writer)."""
    raw = await tx.fetchrow(LOCK if lock else GET, session=session_id)
    return None if raw is None else decode(raw)


async def lock_expired(tx: Transaction, now: datetime, limit: int) -> list[SessionRecord]:
    """AVAILABLE sessions whose time is up, soonest first, locked; rows another sweeper holds
    are skipped. The ``(status, expires_at)`` index makes this cost what is due."""
    return [decode(raw) for raw in await tx.fetch(EXPIRED, now=now, limit=limit)]


async def any_expired(tx: Transaction, now: datetime) -> bool:
    """Whether ``lock_expired`` would find anything: a plain read, no write transaction."""
    return await tx.fetchrow(_ANY_EXPIRED, now=now) is not None


async def lock_available_actuals(tx: Transaction, session_ids: Sequence[str]) -> list[Sequence[Any]]:
    """(session_id, sla, bandwidth_mbps, actual) of those of ``session_ids`` still AVAILABLE,
    locked for ``set_actuals`` in the same transaction."""
    rows = await tx.fetch_many(_AVAILABLE_ACTUAL, [{"session": session_id} for session_id in session_ids]) if session_ids else []
    return [decode_row(row, (3,), ()) for row in rows]


async def set_actuals(tx: Transaction, actuals: Mapping[str, dict[str, Any]]) -> None:
    """Write each session's ``actual`` figures."""
    if actuals:
        await tx.execute_many(_SET_ACTUAL, [{"session": session_id, "actual": actual} for session_id, actual in actuals.items()])


async def mark_sink_gone(tx: Transaction, session_id: str) -> None:
    """The session's sink answered 410: no more events are queued for it."""
    await tx.execute(_MARK_SINK_GONE, session=session_id)


async def next_expiry(tx: Transaction) -> datetime | None:
    """When the next AVAILABLE session expires (None: no session is AVAILABLE)."""
    return parse_time(await tx.fetchval(_NEXT_EXPIRY))


async def purge(tx: Transaction, now: datetime, limit: int) -> int:
    """Forget up to ``limit`` sessions that ended, were released and are past ``purge_at``."""
    return await tx.execute(_PURGE, now=now, limit=limit)


async def insert(tx: Transaction, record: SessionRecord) -> bool:
    """Write a new session; False when its slot is held by another (nothing written).

    A live session with the same ``dedup_key`` raises ``UniqueViolation`` (on PostgreSQL
    once that session's transaction commits, if it has not yet)."""
    # the count of rows written says it, not RETURNING: on SQLite, RETURNING collects the
    # rows in a table of their own first, a quarter of the insert's time
    return await tx.execute(_INSERT, **columns(record)) == 1


def columns(record: SessionRecord) -> dict[str, Any]:
    """The record as the parameters of its row's insert, one per column."""
    return {name: getattr(record, name) for name in _FIELDS}


def column_arrays(records: Sequence[SessionRecord]) -> dict[str, tuple[Any, ...]]:
    """``records`` as the parameters of ``INSERT_MANY_TEXT``, one array per column (JSON as
    its text: the json type keeps what it was given, ``\\u0000`` included)."""
    arrays = {name: tuple(getattr(record, name) for record in records) for name in _FIELDS}
    for index in _JSON:
        arrays[_FIELDS[index]] = tuple(json_text(value) for value in arrays[_FIELDS[index]])
    return arrays


async def has_live_twin(tx: Transaction, dedup_key: str) -> bool:
    """Whether a live session holds ``dedup_key``."""
    return await tx.fetchrow(_LIVE_TWIN, key=dedup_key) is not None


async def update(tx: Transaction, record: SessionRecord, **changes: Any) -> SessionRecord:
    """Write ``changes`` to the row and return the record with them (one statement per set
    of columns, built once)."""
    names = tuple(sorted(changes))
    statement = _UPDATES.get(names)
    if statement is None:
        assignments = ", ".join(f"{name} = :{name}" for name in names)
        statement = _UPDATES[names] = Sql(f"UPDATE sessions SET {assignments} WHERE session_id = :session_id")
    await tx.execute(statement, session_id=record.session_id, **changes)
    return replace(record, **changes)


# only a REQUESTED row starts; it says whether its sink answered 410 meanwhile
_START = Sql(
    f"UPDATE sessions SET status = '{Status.AVAILABLE.value}', started_at = :started_at, expires_at = :expires_at "
    f"WHERE session_id = :session AND status = '{Status.REQUESTED.value}' RETURNING sink_gone"
)


async def start(tx: Transaction, session_id: str, *, started_at: datetime, expires_at: datetime) -> bool | None:
    """Mark a REQUESTED session AVAILABLE from ``started_at``; returns its ``sink_gone``.
    None, having written nothing, when the session is no longer REQUESTED (or gone). On
    PostgreSQL the statement waits for a transaction that holds the row, then re-checks it."""
    raw = await tx.fetchrow(_START, session=session_id, started_at=started_at, expires_at=expires_at)
    return None if raw is None else bool(raw[0])


_DELETE_TEXT = "DELETE FROM sessions WHERE session_id = :session"
_DELETE = Sql(_DELETE_TEXT)
_DELETE_HOLDING = Sql(f"{_DELETE_TEXT} RETURNING plan, released_at")


async def delete(tx: Transaction, session_id: str) -> None:
    """Forget the session."""
    await tx.execute(_DELETE, session=session_id)


async def delete_holding(tx: Transaction, session_id: str) -> dict[str, int] | None:
    """Forget the session; returns what it held (``held_by``), which the caller gives back.
    None when it was already gone. Only the two columns that say so are read back."""
    raw = await tx.fetchrow(_DELETE_HOLDING, session=session_id)
    if raw is None:
        return None
    plan, released_at = decode_row(raw, (0,), (1,))
    return held_by(plan, released_at)


_BEGIN_JOB = Sql(MARK_BEGUN)
_BEGIN_JOB_AND_GET = Sql(
    f"WITH begun AS ({MARK_BEGUN} RETURNING job_id) "
    f"SELECT EXISTS (SELECT 1 FROM begun), {_COLUMNS} FROM (VALUES (1)) AS one (x) LEFT JOIN sessions ON session_id = :session"
)


async def begin_job(tx: Transaction, session_id: str, *, job_id: int, worker_id: str, now: datetime) -> tuple[bool, SessionRecord | None]:
    """Mark ``worker_id``'s job begun (``jobs.begun_at``) and read the session it is for:
    one statement on PostgreSQL, so beginning costs no round trip of its own. ``(False,
    None)`` when the job is no longer the worker's (a delete withdrew it, or another worker
    took it over after a lost lease): its work must not begin.

    Outside a transaction (``Database.autocommit``) the mark commits before the caller
    touches the network, so a delete that comes later finds it begun; one that came first
    took the job's row, and the mark finds nothing."""
    if tx.dialect == POSTGRES:
        raw = await tx.fetchrow(_BEGIN_JOB_AND_GET, job=job_id, worker=worker_id, now=now, session=session_id)
        assert raw is not None  # the statement returns one row
        if not raw[0]:
            return False, None
        return True, None if raw[1] is None else decode(raw[1:])
    if not await tx.execute(_BEGIN_JOB, job=job_id, worker=worker_id, now=now):
        return False, None
    return True, await get(tx, session_id)


_LOCK_CLIENT = Sql("SELECT pg_advisory_xact_lock(hashtextextended(:client, 0))")
_COUNT_LIVE = Sql(f"SELECT count(*) FROM sessions WHERE client_id = :client AND {LIVE_SESSION}")


async def count_live(tx: Transaction, client_id: str) -> int:
    """The client's live sessions, counted so that concurrent creates of one client queue
    here until the transaction ends (PostgreSQL: an advisory lock; SQLite's transactions
    already exclude every other writer): a quota check on the count cannot be stale."""
    if tx.dialect == POSTGRES:
        await tx.execute(_LOCK_CLIENT, client=client_id)
    return int(await tx.fetchval(_COUNT_LIVE, client=client_id))
