"""getSession and listSessions straight on the database driver (asyncpg, sqlite3).

Why not through SQLAlchemy like every other query: these two reads are most of an API's
traffic, and on them SQLAlchemy's async layer (pool checkout, greenlet hand-offs, result
processing) cost about 1 ms of CPU per request, ten times the rest of the request (see
``bench/load.py``). The statements below are the same for both databases; only the
placeholder style and how a row is decoded differ, in one small class per driver.

Both readers are autocommit and read only. On SQLite the query runs on the event loop
itself: a primary-key or index lookup on a WAL database takes microseconds and never
waits for the writer, whereas a trip to a thread costs more than the query.
"""

from __future__ import annotations

import asyncio
import sqlite3
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from s2cvpn.storage.db import DatabaseUnavailable


class SessionView(NamedTuple):
    """The columns an API answer or the session's L3NM document shows (no sink or credential)."""

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
    plan: dict[str, Any] | None
    allocation: dict[str, Any] | None
    actual: dict[str, Any] | None


_COLUMNS = ", ".join(SessionView._fields)
_JSON = [SessionView._fields.index(name) for name in ("request", "plan", "allocation", "actual")]
_TIMES = [SessionView._fields.index(name) for name in ("created_at", "started_at", "expires_at", "ended_at")]
# {0}, {1}, {2} are the parameters in order, rendered as $1.. (asyncpg) or ? (sqlite3)
ONE = f"SELECT {_COLUMNS} FROM sessions WHERE session_id = {{0}}"
COUNT = "SELECT count(*) FROM sessions WHERE client_id = {0}"
PAGE = f"SELECT {_COLUMNS} FROM sessions WHERE client_id = {{0}} ORDER BY created_at, session_id LIMIT {{1}} OFFSET {{2}}"
POSTGRES_MARKERS = ("$1", "$2", "$3")
SQLITE_MARKERS = ("?", "?", "?")


class SessionReader(ABC):
    @abstractmethod
    async def one(self, session_id: str) -> SessionView | None:
        """The session, whoever owns it (the caller checks ownership)."""

    @abstractmethod
    async def page(self, client_id: str, offset: int, limit: int) -> tuple[list[SessionView], int]:
        """One page of the client's sessions, oldest first, and how many it has in all."""

    @abstractmethod
    async def close(self) -> None: ...


def _decode(raw: tuple[Any, ...] | asyncpg.Record, parse_time: bool) -> SessionView:
    values = list(raw)
    for index in _JSON:
        if values[index] is not None:
            values[index] = orjson.loads(values[index])
    if parse_time:  # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' without a zone
        for index in _TIMES:
            if values[index] is not None:
                values[index] = datetime.fromisoformat(values[index]).replace(tzinfo=UTC)
    return SessionView(*values)


# what asyncpg raises when the server is away, restarting or the connection broke (an
# InternalClientError when a dying connection's protocol is caught mid-state)
POSTGRES_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError, OSError, TimeoutError)


class ConnectionLender:
    """asyncpg connections lent to one read at a time: a free list and a queue of waiters.

    asyncpg's ``Pool`` does more than these reads need (a reset query, timeouts, a task per
    release), and cost about 70 us a request, as much as the query itself
    (``bench/load.py``). Connections open on first need, so a service started while
    PostgreSQL is down still starts; a connection that failed is dropped, not lent again.
    """

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._opened = 0
        # each waiter gets an idle connection, or None: "one may be opened now"
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def borrow(self) -> asyncpg.Connection:
        while True:
            if self._idle:
                return self._idle.pop()
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await asyncpg.connect(self._dsn)
                except BaseException:
                    self._opened -= 1
                    self._hand_over(None)
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over just as we were cancelled
                    handed = waiter.result()
                    if handed is None:
                        self._hand_over(None)
                    else:
                        self.give_back(handed, failed=False)
                raise
            if connection is not None:
                return connection

    def give_back(self, connection: asyncpg.Connection, *, failed: bool) -> None:
        if failed or self._closed or connection.is_closed():
            connection.terminate()
            self._opened -= 1
            self._hand_over(None)
        elif not self._hand_over(connection):
            self._idle.append(connection)

    def _hand_over(self, value: asyncpg.Connection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(value)
                return True
        return False

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._opened -= 1
            await connection.close()


class PostgresSessionReader(SessionReader):
    """Its own connections (see ``ConnectionLender``); asyncpg prepares each statement once per connection."""

    def __init__(self, dsn: str, max_size: int) -> None:
        self._connections = ConnectionLender(dsn, max_size)
        self._one, self._count, self._page = (sql.format(*POSTGRES_MARKERS) for sql in (ONE, COUNT, PAGE))

    async def one(self, session_id: str) -> SessionView | None:
        row = await self._run(lambda connection: connection.fetchrow(self._one, session_id))
        return None if row is None else _decode(row, parse_time=False)

    async def page(self, client_id: str, offset: int, limit: int) -> tuple[list[SessionView], int]:
        async def count_and_fetch(connection: asyncpg.Connection) -> tuple[int, list[asyncpg.Record]]:
            total = await connection.fetchval(self._count, client_id)
            return total, (await connection.fetch(self._page, client_id, limit, offset) if offset < total else [])

        total, rows = await self._run(count_and_fetch)
        return [_decode(row, parse_time=False) for row in rows], int(total)

    async def _run(self, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        try:
            connection = await self._connections.borrow()
            failed = True
            try:
                result = await work(connection)
                failed = False
            finally:
                self._connections.give_back(connection, failed=failed)
        except POSTGRES_FAILURES as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        return result

    async def close(self) -> None:
        await self._connections.close()


class SqliteSessionReader(SessionReader):
    def __init__(self, path: str) -> None:
        # autocommit (isolation_level None): each SELECT reads the latest committed state
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA busy_timeout=1000")  # WAL readers wait only in rare checkpoint corners
        self._one, self._count, self._page = (sql.format(*SQLITE_MARKERS) for sql in (ONE, COUNT, PAGE))

    async def one(self, session_id: str) -> SessionView | None:
        try:
            row = self._connection.execute(self._one, (session_id,)).fetchone()
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        return None if row is None else _decode(row, parse_time=True)

    async def page(self, client_id: str, offset: int, limit: int) -> tuple[list[SessionView], int]:
        try:
            (total,) = self._connection.execute(self._count, (client_id,)).fetchone()
            rows = self._connection.execute(self._page, (client_id, limit, offset)).fetchall() if offset < total else []
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        return [_decode(row, parse_time=True) for row in rows], int(total)

    async def close(self) -> None:
        self._connection.close()


def open_session_reader(url: str, *, pool_size: int = 10) -> SessionReader:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SqliteSessionReader(parsed.database or "")
    return PostgresSessionReader(parsed.set(drivername="postgresql").render_as_string(hide_password=False), pool_size)
