"""getSession and listSessions straight on the database driver (``storage.driver``).

Why not through SQLAlchemy like the cold paths: these two reads are most of an API's
traffic, and on them SQLAlchemy's async layer (pool checkout, greenlet hand-offs, result
processing) cost about 1 ms of CPU per request, ten times the rest of the request (see
``bench/load.py``). The reads are autocommit; on SQLite they run on the event loop itself
(see ``SqliteDatabase``).

On PostgreSQL, getSession's reads are coalesced: one query is in flight at a time, and the
reads that arrive meanwhile go together in the next one (``session_id = ANY(..)``). A read
there waits for a connection and a round trip anyway; under load, a dozen of them then
cost one round trip and one statement instead of a dozen (getSession went from 39% of
the bare endpoint's rate to 61%, bench/README.md, seventh round). A read alone is sent at
once, one turn of the event loop later. Each read still sees what was committed before it
arrived: its query is sent after it. On SQLite a read is a call on the event loop that
takes microseconds, with nothing to wait for and nothing to share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from s2cvpn.storage.driver import POSTGRES, Database, Sql, decode_row


@dataclass(frozen=True, slots=True)
class SessionView:
    """The columns an API answer shows (no sink or credential, and no plan: only the L3NM
    document and the worker use it, through ``session_store``, and it is the largest JSON
    column; parsing it for every row of a page was a fifth of listSessions)."""

    session_id: str
    client_id: str
    status: str
    status_info: str | None
    request: dict[str, Any]
    sla: str
    bandwidth_mbps: int
    max_latency_ms: int | None
    duration_hours: float
    created_at: datetime
    started_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    allocation: dict[str, Any] | None
    actual: dict[str, Any] | None


VIEW_FIELDS = tuple(field.name for field in fields(SessionView))
_COLUMNS = ", ".join(VIEW_FIELDS)
_JSON = [VIEW_FIELDS.index(name) for name in ("request", "allocation", "actual")]
_TIMES = [VIEW_FIELDS.index(name) for name in ("created_at", "started_at", "expires_at", "ended_at")]
ONE = Sql(f"SELECT {_COLUMNS} FROM sessions WHERE session_id = :session")
SOME = Sql(f"SELECT {_COLUMNS} FROM sessions WHERE session_id = ANY(:sessions)")  # PostgreSQL only
_COUNT = "SELECT count(*) FROM sessions WHERE client_id = :client"
COUNT = Sql(_COUNT)
# the count rides along with the page (an uncorrelated subquery, run once): one round trip
# instead of two; only a page past the end, which has no row to carry it, counts apart
PAGE = Sql(
    f"SELECT {_COLUMNS}, ({_COUNT}) FROM sessions WHERE client_id = :client "
    "ORDER BY created_at, session_id LIMIT :limit OFFSET :offset"
)


def _decode(raw: Sequence[Any]) -> SessionView:
    return SessionView(*decode_row(raw, _JSON, _TIMES))


Waiters = dict[str, list["asyncio.Future[SessionView | None]"]]  # session id -> its reads


class SessionReader:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._coalesce = database.dialect == POSTGRES
        self._next: Waiters = {}  # reads waiting for the next query
        self._reading: asyncio.Task[None] | None = None  # the task sending the queries (done: none is)

    async def one(self, session_id: str) -> SessionView | None:
        """The session, whoever owns it (the caller checks ownership)."""
        if not self._coalesce:
            async with self._database.reading() as tx:
                row = await tx.fetchrow(ONE, session=session_id)
            return None if row is None else _decode(row)
        waiter: asyncio.Future[SessionView | None] = asyncio.get_running_loop().create_future()
        self._next.setdefault(session_id, []).append(waiter)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_batches(), name="s2cvpn-session-reads")
            self._reading.add_done_callback(self._reader_stopped)
        return await waiter

    async def _read_batches(self) -> None:
        """One query at a time, each for every read that arrived while the last one ran."""
        batch: Waiters = {}
        try:
            while self._next:
                batch, self._next = self._next, {}
                try:
                    async with self._database.reading() as tx:
                        rows = await tx.fetch(SOME, sessions=tuple(batch))
                except Exception as exc:  # noqa: BLE001 - each read fails as it would alone (503 for an outage)
                    _settle(batch, error=exc)
                    continue
                found = {row[0]: row for row in rows}
                for session_id, waiters in batch.items():
                    row = found.get(session_id)
                    for waiter in waiters:
                        if not waiter.done():  # a request cancelled meanwhile no longer waits
                            waiter.set_result(None if row is None else _decode(row))
        except BaseException as exc:  # cancelled (shutdown): the reads of its query are too
            _settle(batch, error=exc)
            raise

    def _reader_stopped(self, reader: asyncio.Task[None]) -> None:
        """A reader cancelled or failed, even before it began, leaves no read waiting for it
        (one that ended normally left none: it stops only when no read waits)."""
        if self._reading is not reader:
            return
        error = asyncio.CancelledError() if reader.cancelled() else reader.exception()
        if error is not None:
            stranded, self._next = self._next, {}
            _settle(stranded, error=error)

    async def page(self, client_id: str, offset: int, limit: int) -> tuple[list[SessionView], int]:
        """One page of the client's sessions, oldest first, and how many it has in all."""
        async with self._database.reading() as tx:
            rows = await tx.fetch(PAGE, client=client_id, limit=limit, offset=offset)
            total = int(rows[0][-1]) if rows else int(await tx.fetchval(COUNT, client=client_id))
        return [_decode(row[:-1]) for row in rows], total


def _settle(batch: Waiters, *, error: BaseException) -> None:
    """Fail every read of ``batch`` still waiting with ``error`` (cancel it, if cancelled)."""
    for waiters in batch.values():
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(error, Exception):
                waiter.set_exception(error)
            else:
                waiter.cancel()
