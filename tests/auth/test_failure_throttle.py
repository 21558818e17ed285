"""FailureThrottle: lockouts after repeated failures, growing exponentially, kept in the
database (SQLite here; shared by replicas on PostgreSQL in tests/scale)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn.auth.clients import FailureThrottle
from s2cvpn.storage import token_failures
from s2cvpn.storage.driver import open_database
from s2cvpn.storage.tables import TokenFailureRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_locks_after_limit_failures_within_window(sessions: async_sessionmaker) -> None:
    throttle = FailureThrottle(sessions, window=timedelta(seconds=60), base_lockout=timedelta(seconds=30))
    for i in range(2):
        await throttle.failure("client:a", 3, _at(i))
    assert await throttle.retry_after(["client:a"], _at(2)) is None
    await throttle.failure("client:a", 3, _at(2))
    assert await throttle.retry_after(["client:a"], _at(2)) == 30
    assert await throttle.retry_after(["client:a"], _at(31.5)) == 1
    assert await throttle.retry_after(["client:a"], _at(32)) is None
    assert await throttle.retry_after(["client:b"], _at(3)) is None  # other keys are unaffected


async def test_failures_outside_the_window_do_not_count(sessions: async_sessionmaker) -> None:
    throttle = FailureThrottle(sessions, window=timedelta(seconds=60))
    await throttle.failure("k", 3, _at(0))
    await throttle.failure("k", 3, _at(10))
    await throttle.failure("k", 3, _at(100))  # the first two are out of the window by now
    assert await throttle.retry_after(["k"], _at(100)) is None


async def test_lockouts_double_and_are_capped(sessions: async_sessionmaker) -> None:
    throttle = FailureThrottle(sessions, base_lockout=timedelta(seconds=10), max_lockout=timedelta(seconds=35))
    t = 0.0
    waits = []
    for _ in range(4):
        await throttle.failure("k", 1, _at(t))
        wait = await throttle.retry_after(["k"], _at(t))
        assert wait is not None
        waits.append(wait)
        t += wait + 1
    assert waits == [10, 20, 35, 35]


async def test_success_resets_only_its_key_and_quiet_keys_start_over(sessions: async_sessionmaker) -> None:
    throttle = FailureThrottle(sessions, base_lockout=timedelta(seconds=10))
    await throttle.failure("client:a", 1, _at(0))
    await throttle.failure("addr:1", 1, _at(0))
    await throttle.success("client:a")
    assert await throttle.retry_after(["client:a"], _at(1)) is None
    assert await throttle.retry_after(["client:a", "addr:1"], _at(1)) == 9  # the longest wait of the keys
    quiet = token_failures.FORGET_AFTER.total_seconds() + 1
    await throttle.failure("addr:1", 5, _at(quiet))  # quiet for longer than FORGET_AFTER: counting starts over
    assert await throttle.retry_after(["addr:1"], _at(quiet)) is None


async def test_a_new_throttle_on_the_same_database_sees_the_lockout(sessions: async_sessionmaker) -> None:
    """What another replica, or this one after a restart, sees."""
    await FailureThrottle(sessions).failure("client:a", 1, _at(0))
    assert await FailureThrottle(sessions).retry_after(["client:a"], _at(1)) == 29


async def test_quiet_keys_are_pruned(sessions: async_sessionmaker, db_url: str) -> None:
    throttle = FailureThrottle(sessions)
    for i in range(5):
        await throttle.failure(f"addr:{i}", 100, _at(i * 1000))
    database = open_database(db_url)  # the purge sweep prunes on the driver's path
    try:
        async with database.transaction() as tx:
            await token_failures.prune(tx, _at(1500) + token_failures.FORGET_AFTER)
    finally:
        await database.close()
    async with sessions() as db:
        left = await db.scalars(select(TokenFailureRow.key))
        assert sorted(left.all()) == ["addr:2", "addr:3", "addr:4"]  # quiet since before 1500 s: gone
