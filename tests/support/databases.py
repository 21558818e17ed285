"""PostgreSQL for tests: a fresh database per test session, dropped afterwards.

The server is the machine's own (127.0.0.1:5432, trust auth); ``S2CVPN_TEST_PG`` points
elsewhere. Admin statements go through asyncpg, the driver the service itself uses.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import Any

import asyncpg

ADMIN_URL = os.environ.get("S2CVPN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@cache
def postgres_reason() -> str:
    """Why PostgreSQL cannot be used, or '' when it can. Checked on a thread of its own, so
    that an async test may ask too: ``asyncio.run`` inside its loop would fail, and the
    failure, cached, would skip every PostgreSQL test after it."""
    try:
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, _admin("SELECT 1")).result()
    except Exception as exc:  # noqa: BLE001 - any failure is a reason to skip
        return f"PostgreSQL at {ADMIN_URL} is not reachable ({type(exc).__name__}: {exc})"
    return ""


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"s2cvpn_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class CountedReads:
    """Counts the reads a ``Database`` lends (``database.reading()``), wrapping it in place:
    how many queries reads that share them took."""

    def __init__(self, database: Any) -> None:
        self.count = 0
        reading = database.reading

        def counted() -> Any:
            self.count += 1
            return reading()

        database.reading = counted
