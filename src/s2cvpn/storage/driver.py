"""Transactions straight on the database driver (asyncpg, sqlite3), for the session hot path.

Why not SQLAlchemy's ORM here, as everywhere else: a create and a delete with their
provisioning and teardown are about 25 statements, and through the async ORM (unit of
work, greenlet hand-offs, result processing) they cost about 16 ms of CPU, several times
the statements themselves (``bench/load.py``). The statements are written once, in SQL
with ``:name`` parameters; ``Sql`` renders them for each driver, and the two small
``Transaction`` classes below are the only place where the drivers differ: placeholders,
how values are passed (SQLite keeps UTC times as text and JSON as text) and which errors
mean "the database is unavailable" or "that key is taken".

On SQLite a transaction runs on the event loop itself, one at a time per process (a lock),
and waits for another process's writer by retrying ``BEGIN IMMEDIATE`` asynchronously: it
never blocks the loop on a busy database. Its statements take microseconds on WAL; its
COMMIT, which writes the log, took as long as all of them, so transactions that wait for
each other share one (``SqliteDatabase.transaction``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

POSTGRES = "postgresql"
SQLITE = "sqlite"
SQLITE_BUSY_WAIT_SECONDS = 30.0
SQLITE_SYNCHRONOUS = "NORMAL"

# what asyncpg raises when the server is away, restarting or the connection broke (an
# InternalClientError when a dying connection's protocol is caught mid-state)
POSTGRES_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError, OSError, TimeoutError)


class DatabaseUnavailable(Exception):
    """A driver-level failure to reach the database (the API answers 503, like for SQLAlchemy's)."""


class Deadlock(DatabaseUnavailable):
    """PostgreSQL undid a statement to break a deadlock (SQLSTATE 40P01). Where nobody
    retries it, it answers 503 as an outage does; a statement of several users' writes
    retries them one by one (``coalescing.together_or_one_by_one``)."""


class UniqueViolation(Exception):
    """An INSERT hit a unique key that another committed (or committing) transaction holds."""


class Refused(Exception):
    """A statement's own guard failed and undid it (``s2cvpn_refuse``, PostgreSQL): the
    message is the guard's reason."""


REFUSED_SQLSTATE = "S2001"  # raised by s2cvpn_refuse (migration 0007)
DEADLOCK_SQLSTATE = "40P01"


log = logging.getLogger(__name__)
_NAME = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Sql:
    """One statement, written once with ``:name`` parameters, rendered for each driver.

    Both renderings number the parameters in order of first use (``$1`` on asyncpg, ``?1``
    on sqlite3), and both drivers are given their values as a list in that order: sqlite3
    binds a list by position, and a dict by looking up each name, a cost on every
    statement (bench/HISTORY.md, fourteenth round).

    A ``{lock}`` in the text becomes ``lock`` on PostgreSQL (``FOR UPDATE``, ``FOR UPDATE
    SKIP LOCKED``) and nothing on SQLite, which has one writer at a time and no row locks.
    """

    __slots__ = ("sqlite", "postgres", "names")

    def __init__(self, text: str, *, lock: str = "") -> None:
        names: list[str] = []

        def numbered(mark: str) -> Callable[[re.Match[str]], str]:
            def number(match: re.Match[str]) -> str:
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"{mark}{names.index(match.group(1)) + 1}"

            return number

        self.postgres = _NAME.sub(numbered("$"), text.replace("{lock}", lock))
        self.sqlite = _NAME.sub(numbered("?"), text.replace(" {lock}", ""))
        self.names = tuple(names)


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def json_value(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def sqlite_time(value: datetime) -> str:
    """SQLAlchemy's storage format for DateTime on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``,
    UTC): the ORM and these statements must agree. isoformat takes a third of strftime's time."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def parse_time(value: datetime | str | None) -> datetime | None:
    """A time as read back: asyncpg gives an aware datetime, SQLite the text written above."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value + "+00:00")  # six times faster than .replace(tzinfo=UTC)


def decode_row(raw: Sequence[Any], json_at: Sequence[int], times_at: Sequence[int]) -> list[Any]:
    """A row as read, with its JSON columns parsed and its times aware (on either driver)."""
    values = list(raw)
    for index in json_at:
        values[index] = json_value(values[index])
    for index in times_at:
        values[index] = parse_time(values[index])
    return values


class Transaction(ABC):
    """The statements of one transaction. Parameters are plain Python values: JSON columns
    take dicts or lists, time columns aware datetimes."""

    dialect: str
    # each statement borrows a connection of its own and commits alone (``Database.autocommit``
    # on PostgreSQL): nothing ties one statement to the next
    per_statement = False

    @abstractmethod
    async def execute(self, sql: Sql, **params: Any) -> int:
        """Run a statement; returns how many rows it changed."""

    @abstractmethod
    async def execute_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per row of parameters (asyncpg sends them in one go)."""

    @abstractmethod
    async def fetch(self, sql: Sql, **params: Any) -> Sequence[Sequence[Any]]: ...

    @abstractmethod
    async def fetch_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> Sequence[Sequence[Any]]:
        """Run a statement once per row of parameters, in order, and return every row they
        returned (asyncpg sends them in one go: a batch costs one round trip)."""

    async def fetchrow(self, sql: Sql, **params: Any) -> Sequence[Any] | None:
        rows = await self.fetch(sql, **params)
        return rows[0] if rows else None

    async def fetchval(self, sql: Sql, **params: Any) -> Any:
        row = await self.fetchrow(sql, **params)
        return None if row is None else row[0]


class PostgresTransaction(Transaction):
    dialect = POSTGRES

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    @staticmethod
    def _args(sql: Sql, params: Mapping[str, Any]) -> list[Any]:
        return [json_text(value) if isinstance(value, dict | list) else value for value in (params[name] for name in sql.names)]

    async def _call(self, method: Any, sql: Sql, *args: Any) -> Any:
        """``method(sql, *args)`` on the connection, a taken unique key told as ``UniqueViolation``,
        a failed guard as ``Refused`` and a broken deadlock as ``Deadlock``."""
        try:
            return await method(sql.postgres, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == REFUSED_SQLSTATE:
                raise Refused(str(exc)) from exc
            if exc.sqlstate == DEADLOCK_SQLSTATE:
                raise Deadlock(str(exc)) from exc
            raise

    async def execute(self, sql: Sql, **params: Any) -> int:
        status = await self._call(self.connection.execute, sql, *self._args(sql, params))
        # the command tag ends with the row count: "UPDATE 1", "INSERT 0 1", "DELETE 3"
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def execute_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._call(self.connection.executemany, sql, [self._args(sql, row) for row in rows])

    async def fetch(self, sql: Sql, **params: Any) -> Sequence[Sequence[Any]]:
        return await self._call(self.connection.fetch, sql, *self._args(sql, params))

    async def fetch_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> Sequence[Sequence[Any]]:
        return await self._call(self.connection.fetchmany, sql, [self._args(sql, row) for row in rows])


class PostgresAutocommit(Transaction):
    """``Database.autocommit`` on PostgreSQL: each statement is lent a connection for itself
    and commits alone. So work made of such statements holds no connection between them:
    not while it plans, nor while its write waits to go in one statement with others'
    (``acceptance``)."""

    dialect = POSTGRES
    per_statement = True

    def __init__(self, lender: ConnectionLender) -> None:
        self._lender = lender

    async def execute(self, sql: Sql, **params: Any) -> int:
        async with self._lender.lend() as tx:
            return await tx.execute(sql, **params)

    async def execute_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        async with self._lender.lend() as tx:
            await tx.execute_many(sql, rows)

    async def fetch(self, sql: Sql, **params: Any) -> Sequence[Sequence[Any]]:
        async with self._lender.lend() as tx:
            return await tx.fetch(sql, **params)

    async def fetch_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> Sequence[Sequence[Any]]:
        async with self._lender.lend() as tx:
            return await tx.fetch_many(sql, rows)


class SqliteTransaction(Transaction):
    dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @staticmethod
    def _args(sql: Sql, params: Mapping[str, Any]) -> list[Any]:
        args: list[Any] = []
        for name in sql.names:
            value = params[name]
            if isinstance(value, datetime):
                value = sqlite_time(value)
            elif isinstance(value, dict | list):
                value = json_text(value)
            args.append(value)
        return args

    def _run(self, sql: Sql, params: Mapping[str, Any]) -> sqlite3.Cursor:
        return self._call(self._connection.execute, sql.sqlite, self._args(sql, params))

    @staticmethod
    def _call(method: Callable[..., sqlite3.Cursor], *args: Any) -> sqlite3.Cursor:
        try:
            return method(*args)
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from exc
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"sqlite: {exc}") from exc

    async def execute(self, sql: Sql, **params: Any) -> int:
        return self._run(sql, params).rowcount

    async def execute_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        self._call(self._connection.executemany, sql.sqlite, [self._args(sql, row) for row in rows])

    async def fetch(self, sql: Sql, **params: Any) -> Sequence[Sequence[Any]]:
        return self._run(sql, params).fetchall()

    async def fetch_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> Sequence[Sequence[Any]]:
        return [returned for row in rows for returned in self._run(sql, row).fetchall()]


# True in the worker's tasks (``Worker.start``): their statements are background work,
# which borrows connections behind the API's requests (``ConnectionLender``)
background_work: contextvars.ContextVar[bool] = contextvars.ContextVar("s2cvpn_background_work", default=False)
BACKGROUND_PATIENCE_SECONDS = 0.1


def background_context() -> contextvars.Context:
    """A copy of the current context in which statements are background work."""
    context = contextvars.copy_context()
    context.run(background_work.set, True)
    return context


class ConnectionLender:
    """asyncpg connections lent to one user at a time: a free list and two queues of waiters.

    asyncpg's ``Pool`` does more than we need (a reset query, timeouts, a task per
    release), and cost about 70 us a request, as much as a query (``bench/load.py``).
    Connections open on first need, so a service started while PostgreSQL is down still
    starts; a connection that failed is dropped, not lent again.

    Background work (the embedded worker) waits behind the API's requests. A claimed batch
    of jobs asks for dozens of connections at once, and a request's statement queued
    behind them waited up to 20 ms at the p99 (``bench/HISTORY.md``, twenty-first round).
    So a request goes first; background work holds at most all but one connection, so a
    request never waits for a slow job's transaction to end; and a background borrower
    that has waited ``BACKGROUND_PATIENCE_SECONDS`` goes first in its turn, so that a busy
    API never starves the worker (its lease renewals among its statements).
    """

    def __init__(self, dsn: str, size: int, *, background_patience: float = BACKGROUND_PATIENCE_SECONDS) -> None:
        self._dsn = dsn
        self._size = size
        self._background_patience = background_patience
        self._idle: list[asyncpg.Connection] = []
        self._opened = 0
        # each waiter gets an idle connection, or None: "one may be opened now"
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._background_waiters: deque[tuple[float, asyncio.Future[asyncpg.Connection | None]]] = deque()  # (since, waiter)
        self._background_held = 0  # connections lent to background work, or handed to its waiters
        self._background_share = max(size - 1, 1)
        self._closed = False

    async def borrow(self, *, background: bool = False) -> asyncpg.Connection:
        """A connection for the caller alone, until ``give_back`` with the same ``background``."""
        while True:
            if not background or self._background_held < self._background_share:
                if self._idle:
                    self._background_held += background
                    return self._idle.pop()
                if self._opened < self._size:
                    self._opened += 1
                    self._background_held += background
                    try:
                        return await asyncpg.connect(self._dsn)
                    except BaseException:
                        self._opened -= 1
                        self._background_held -= background
                        self._hand_over(None)
                        raise
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            if background:
                self._background_waiters.append((time.monotonic(), waiter))
            else:
                self._waiters.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over just as we were cancelled
                    handed = waiter.result()
                    if handed is None:
                        self._background_held -= background
                        self._hand_over(None)
                    else:
                        self.give_back(handed, failed=False, background=background)
                raise
            if connection is not None:
                return connection
            self._background_held -= background  # handed "one may be opened": the loop opens it

    def give_back(self, connection: asyncpg.Connection, *, failed: bool, background: bool = False) -> None:
        self._background_held -= background
        if failed or self._closed or connection.is_closed():
            connection.terminate()
            self._opened -= 1
            self._hand_over(None)
        elif not self._hand_over(connection):
            self._idle.append(connection)

    def _hand_over(self, value: asyncpg.Connection | None) -> bool:
        while (turn := self._next_waiter()) is not None:
            waiter, background = turn
            if not waiter.done():
                waiter.set_result(value)
                self._background_held += background
                return True
        return False

    def _next_waiter(self) -> tuple[asyncio.Future[asyncpg.Connection | None], bool] | None:
        """A request's waiter first, unless background work's oldest has waited its patience
        (and it holds less than its share)."""
        background = self._background_waiters
        if background and self._background_held < self._background_share:
            if not self._waiters or time.monotonic() - background[0][0] >= self._background_patience:
                return background.popleft()[1], True
        if self._waiters:
            return self._waiters.popleft(), False
        return None

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._opened -= 1
            await connection.close()

    def lend(self) -> Lending:
        """``async with lender.lend() as tx``: a borrowed connection for one use."""
        return Lending(self)


class Lending:
    """One use of a lent connection, as a ``PostgresTransaction`` (autocommit unless the
    user begins one). Driver failures become ``DatabaseUnavailable``. A class rather than
    an ``asynccontextmanager``: this runs on every getSession, and the generator machinery
    cost as much as the rest of the wrapper."""

    __slots__ = ("_lender", "_connection", "_background")

    def __init__(self, lender: ConnectionLender) -> None:
        self._lender = lender
        self._background = background_work.get()

    async def __aenter__(self) -> PostgresTransaction:
        try:
            self._connection = await self._lender.borrow(background=self._background)
        except POSTGRES_FAILURES as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        return PostgresTransaction(self._connection)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _traceback: Any) -> None:
        # a driver failure or a cancel mid-statement may leave the connection unusable; an
        # answer of ours (404, 409..) leaves it rolled back and sound
        failed = error is not None and (isinstance(error, POSTGRES_FAILURES) or not isinstance(error, Exception))
        self._lender.give_back(self._connection, failed=failed, background=self._background)
        if isinstance(error, POSTGRES_FAILURES):
            raise DatabaseUnavailable(type(error).__name__) from error


class Database(ABC):
    """Driver-level access to the service's database: the session hot path's transactions
    and reads."""

    dialect: str

    @abstractmethod
    def transaction(self) -> Any:
        """``async with db.transaction() as tx``: commits on success, rolls back on error."""

    @abstractmethod
    def reading(self) -> Any:
        """``async with db.reading() as tx``: reads in autocommit, each one sees the latest
        committed state and never waits for a writer."""

    @abstractmethod
    def autocommit(self) -> Any:
        """``async with db.autocommit() as tx``: work whose every write is one statement on
        PostgreSQL, atomic alone (``storage.acceptance``). There each statement commits by
        itself on a connection lent for it alone (``PostgresAutocommit``), and the work
        costs no BEGIN and COMMIT round trips; its reads see the latest committed state, as
        in a READ COMMITTED transaction. On SQLite, where such a write is several
        statements, the work is one transaction."""

    @abstractmethod
    async def close(self) -> None: ...


class PostgresDatabase(Database):
    dialect = POSTGRES

    def __init__(self, dsn: str, size: int) -> None:
        self.connections = ConnectionLender(dsn, size)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.connections.lend() as tx, tx.connection.transaction():
            yield tx

    def reading(self) -> Lending:
        return self.connections.lend()

    def autocommit(self) -> Reads:
        return Reads(PostgresAutocommit(self.connections))

    async def close(self) -> None:
        await self.connections.close()


class Reads:
    """``async with`` over a transaction that needs no setup (SQLite's read connection,
    ``PostgresAutocommit``)."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def __aenter__(self) -> Transaction:
        return self._tx

    async def __aexit__(self, *_exc: object) -> None:
        return None


class CommitGroup:
    """Transactions that share one SQLite COMMIT (see ``SqliteDatabase.transaction``)."""

    __slots__ = ("members", "committer")

    def __init__(self) -> None:
        self.members: list[asyncio.Future[None]] = []
        self.committer: asyncio.Task[None] | None = None


class CommitGroupMember:
    """One transaction of a commit group: ``async with database.transaction() as tx``
    (``SqliteDatabase.transaction``). A class rather than an ``asynccontextmanager``: every
    write on the hot path enters one, and the generator machinery was 12% of the
    instructions of a transaction of one SELECT (bench/HISTORY.md, thirteenth round)."""

    __slots__ = ("_database", "_group")

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def __aenter__(self) -> Transaction:
        self._group, tx = await self._database.join_group()
        return tx

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _traceback: Any) -> None:
        committed = self._database.leave_group(self._group, failed=error is not None)
        if committed is not None:  # no member returns before the COMMIT that carries its writes
            await committed


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, path: str) -> None:
        # autocommit: BEGIN and COMMIT are ours; busy_timeout 0, so a busy database answers
        # at once and we wait for it on the loop instead of blocking the loop
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA busy_timeout=0")
        self._connection.execute("PRAGMA foreign_keys=ON")
        # the durability the ORM's connections have (storage/db.py): on WAL, a commit survives
        # the process crashing; only a power loss can take back the last ones. FULL would
        # fsync on every commit, with the event loop waiting
        self._connection.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        # each transaction of a commit group runs in a SAVEPOINT, whose journal (the pages it
        # changed, as they were) SQLite keeps in a temporary file by default: in memory, a
        # create+delete's statements took 15-20% less time (bench/HISTORY.md, twelfth round)
        self._connection.execute("PRAGMA temp_store=MEMORY")
        self._one_at_a_time = asyncio.Lock()
        self._group: CommitGroup | None = None
        # reads have their own connection: on WAL they never wait for the writer, and they
        # run on the loop too (a primary-key read takes microseconds, a thread hop more)
        self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._reader.execute("PRAGMA busy_timeout=1000")  # WAL readers wait only in rare checkpoint corners
        self._reads = Reads(SqliteTransaction(self._reader))

    async def _begin(self) -> None:
        deadline = time.monotonic() + SQLITE_BUSY_WAIT_SECONDS
        pause = 0.001
        while True:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise DatabaseUnavailable(f"sqlite: {exc}") from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def transaction(self) -> CommitGroupMember:
        """Group commit: transactions queued behind each other run in one SQLite
        transaction, each inside its own SAVEPOINT, and share one COMMIT.

        The first of a group begins it and queues a committer behind the transactions
        already waiting for the lock, which join the group. Each one's own failure rolls
        back to its savepoint only; a failed COMMIT fails every member. No member returns
        before the COMMIT that carries its writes, so what a caller was told is committed
        is, as before. Under 64 concurrent create+delete requests, BEGIN and COMMIT went
        from 14% of the server's samples to 5% and the rate up by a third
        (``bench/load.py``); a transaction alone pays one more turn of the loop.

        The cost: the write lock is free less often, between groups instead of between
        transactions, and another connection waiting for it (SQLite's busy handler sleeps
        1 to 100 ms between tries) waits longer. Under that load a write from another
        process (``s2cvpn clients create``) took 57 ms at the median and 1.6 s at most,
        against 2.6 and 80 ms before; the ORM's own writes in this process, at most 0.2 s.
        """
        return CommitGroupMember(self)

    async def join_group(self) -> tuple[CommitGroup, Transaction]:
        """Take the write lock and begin a member's SAVEPOINT, in the open group or in a new one."""
        await self._one_at_a_time.acquire()
        try:
            if self._group is None:
                await self._begin()
                self._group = CommitGroup()
                # queued behind the transactions already waiting for the lock: they join this COMMIT
                self._group.committer = asyncio.create_task(self._commit(self._group), name="s2cvpn-sqlite-commit")
            self._connection.execute("SAVEPOINT member")
        except BaseException:
            self._one_at_a_time.release()
            raise
        return self._group, SqliteTransaction(self._connection)

    def leave_group(self, group: CommitGroup, *, failed: bool) -> asyncio.Future[None] | None:
        """End a member's SAVEPOINT and give the write lock back. Kept, the member is to wait
        for the future, which the group's COMMIT settles; failed, it is undone alone."""
        try:
            if failed:
                try:
                    self._connection.execute("ROLLBACK TO member")
                    self._connection.execute("RELEASE member")
                except sqlite3.Error:  # no savepoint left: SQLite rolled it all back (I/O error, full disk...)
                    self._fail_group(group, "sqlite: the transaction was rolled back")
                return None
            self._connection.execute("RELEASE member")
            committed = asyncio.get_running_loop().create_future()
            group.members.append(committed)
            return committed
        finally:
            self._one_at_a_time.release()

    async def _commit(self, group: CommitGroup) -> None:
        async with self._one_at_a_time:
            if self._group is not group:  # ended already, by a rollback
                return
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                self._fail_group(group, f"sqlite: {exc}")
            else:
                self._end_group(group, None)

    def _fail_group(self, group: CommitGroup, error: str) -> None:
        """Nothing of the group is kept: roll back what is left and fail every member."""
        if self._connection.in_transaction:
            try:
                self._connection.execute("ROLLBACK")
            except sqlite3.Error:
                log.warning("sqlite: could not roll back a failed transaction group", exc_info=True)
        self._end_group(group, error)

    def _end_group(self, group: CommitGroup, error: str | None) -> None:
        self._group = None
        for member in group.members:
            if not member.done():  # a member cancelled meanwhile no longer waits
                if error is None:
                    member.set_result(None)
                else:
                    member.set_exception(DatabaseUnavailable(error))

    def reading(self) -> Reads:
        return self._reads

    def autocommit(self) -> CommitGroupMember:
        return self.transaction()

    async def close(self) -> None:
        if self._group is not None and self._group.committer is not None:
            await self._group.committer
        self._connection.close()
        self._reader.close()


def open_database(url: str, *, pool_size: int = 4) -> Database:
    """The database at ``url``; on PostgreSQL with at most ``pool_size`` connections
    (``Settings.database_pool_size``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == SQLITE:
        return SqliteDatabase(parsed.database or "")
    return PostgresDatabase(parsed.set(drivername="postgresql").render_as_string(hide_password=False), pool_size)
