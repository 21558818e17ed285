"""Engine factory: turns the operator's URL into an async engine with the right pragmas.

``sqlite:///PATH`` and ``postgresql://USER@HOST:PORT/DB`` are accepted as written; the
async driver (aiosqlite, asyncpg) is chosen here. SQLite runs in WAL mode with
``BEGIN IMMEDIATE`` transactions, so writers queue instead of failing, and reservations
stay serial there just as row locks make them on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Insert, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from s2cvpn.storage.driver import SQLITE_BUSY_WAIT_SECONDS, SQLITE_SYNCHRONOUS

READ_ONLY = "s2cvpn_read_only"


def async_url(url: str) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def insert_or_skip(table: Table, *returning: ColumnElement[Any]) -> Callable[[AsyncSession], Insert]:
    """``INSERT ... ON CONFLICT DO NOTHING [RETURNING ...]``, built once per dialect (PostgreSQL and
    SQLite spell it alike). Hot statements are built once at import: building one costs more
    CPU than its round trip. Execute the statement the returned function gives for a session
    with the column values as parameters."""
    built = {}
    for name, make in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert)):
        statement = make(table).on_conflict_do_nothing()
        built[name] = statement.returning(*returning) if returning else statement

    def for_session(db: AsyncSession) -> Insert:
        return built["postgresql" if db.bind is not None and db.bind.dialect.name == "postgresql" else "sqlite"]

    return for_session


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (session requests, plans, events) go through orjson: several times faster
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def switch_to_wal(url: str) -> None:
    """Put a SQLite file in WAL mode, waiting for the other processes that do it at the same
    moment (``migrate.upgrade``, before anything else opens the file).

    The switch reads the file's header and then takes the exclusive lock. When two
    connections switch a new file at once, SQLite answers the second "database is locked"
    at once, without waiting its busy timeout, as both waiting would deadlock (4 threads
    switching a new file together: about 8% of them failed so). Replicas that start
    together on a new file do exactly that, so the switch is retried here. Once the file
    is in WAL, the engine's own ``PRAGMA journal_mode=WAL`` (``create_engine``) changes
    nothing and takes no lock."""
    path = make_url(url).database
    if not path or path == ":memory:":
        return
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_WAIT_SECONDS, isolation_level=None)
    deadline = time.monotonic() + SQLITE_BUSY_WAIT_SECONDS
    pause = 0.001
    try:
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
    finally:
        connection.close()


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    target = async_url(url)
    if target.startswith("sqlite"):
        # pooled: opening a SQLite connection (thread, pragmas) costs more than most queries
        engine = create_async_engine(
            target, pool_size=pool_size, max_overflow=pool_size, connect_args={"timeout": 30}, hide_parameters=True, **JSON_CODEC
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below decide
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection) -> None:  # type: ignore[no-untyped-def]
            # writers queue for the lock up front (no deadlock on upgrade); readers take no
            # transaction at all: each SELECT sees one committed state (WAL) and never waits
            if not connection.get_execution_options().get(READ_ONLY, False):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=pool_size,
        # no pre-ping: on asyncpg it costs BEGIN, SELECT and ROLLBACK per checkout; a
        # connection broken by a database restart fails once (503) and the pool is renewed
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,  # errors never echo bound values (credentials) into logs
        **JSON_CODEC,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_connections(engine: AsyncEngine) -> Callable[[], AbstractAsyncContextManager[AsyncConnection]]:
    """Plain connections for reads only, in autocommit: no ORM session to set up, no
    BEGIN/ROLLBACK round trips on PostgreSQL, and on SQLite readers run beside the writer
    instead of queueing behind it. Use with Core statements (``select(table)``)."""
    options: dict[str, object] = {READ_ONLY: True}
    if not is_sqlite(engine):
        options["isolation_level"] = "AUTOCOMMIT"
    return engine.execution_options(**options).connect
