"""Migrations: replicas that start together on one database all succeed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from sqlalchemy import inspect

from s2cvpn.storage.db import create_engine
from s2cvpn.storage.tables import Base


async def _table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def test_concurrent_migrations_all_succeed(fresh_database_url: str) -> None:
    env = {**os.environ, "S2CVPN_DATABASE_URL": fresh_database_url}
    processes = [
        subprocess.Popen([sys.executable, "-m", "s2cvpn", "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
    assert set(Base.metadata.tables) <= asyncio.run(_table_names(fresh_database_url))


def test_migrations_match_the_tables(fresh_database_url: str) -> None:
    """Every table, column and index of ``tables.py`` comes from a migration (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from s2cvpn.storage import migrate

    migrate.upgrade(fresh_database_url)

    async def differences() -> list[object]:
        engine = create_engine(fresh_database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": False}), Base.metadata)
                )
        finally:
            await engine.dispose()

    assert asyncio.run(differences()) == []
