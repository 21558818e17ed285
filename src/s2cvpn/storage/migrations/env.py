"""Alembic environment: runs migrations through the project's async engine factory."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from s2cvpn.storage.db import create_engine
from s2cvpn.storage.tables import Base

target_metadata = Base.metadata


# Every replica migrates at start and they queue, so one upgrades and the others find the
# schema current: on PostgreSQL on this advisory lock, on SQLite on the write lock.
MIGRATION_LOCK_KEY = 0x53324356  # "S2CV"


def _run(connection: Connection) -> None:
    """The whole upgrade in one transaction that first takes the lock.

    The first statement begins the transaction (SQLite: with BEGIN IMMEDIATE, see
    ``storage/db.py``), and Alembic then runs inside it. Left to itself, Alembic commits
    SQLite's migrations one at a time (it does not count on SQLite's transactional DDL), and
    between two of them another replica could read the version and run the same steps.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    else:
        connection.exec_driver_sql("SELECT 1")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
