"""Failed client authentications per key (``client:<id>`` or ``addr:<address>``), kept in
the database so that every replica sees them: N replicas must not give a guesser N times
the attempts, and a restart must not lift a lockout. The policy (how many failures, how
long a lockout) is ``auth.clients.FailureThrottle``'s; this module keeps the state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.storage.db import insert_or_skip
from s2cvpn.storage.driver import Sql, Transaction
from s2cvpn.storage.tables import TokenFailureRow

FORGET_AFTER = timedelta(hours=1)  # a key quiet this long starts over
TABLE = TokenFailureRow.__table__
_OPEN = insert_or_skip(TABLE)
_LOCK = select(TokenFailureRow).where(TokenFailureRow.key == bindparam("key")).with_for_update()
_FORGET = delete(TABLE).where(TABLE.c.key == bindparam("key"))
_PRUNE = Sql("DELETE FROM token_failures WHERE last_failure_at < :before")


@dataclass
class FailureState:
    last_failure_at: datetime
    failures: list[datetime] = field(default_factory=list)  # within the counting window
    lockouts: int = 0
    locked_until: datetime | None = None


async def locked_until(db: AsyncSession, keys: Sequence[str]) -> list[datetime]:
    """When each of ``keys`` that is or was locked gets unlocked."""
    rows = await db.execute(select(TABLE.c.locked_until).where(TABLE.c.key.in_(list(keys)), TABLE.c.locked_until.is_not(None)))
    return [until for (until,) in rows.all()]


async def lock(db: AsyncSession, key: str, now: datetime) -> FailureState:
    """The key's state, locked until the caller's transaction ends (a fresh one if new)."""
    await db.execute(_OPEN(db), {"key": key, "failures": [], "lockouts": 0, "last_failure_at": now})
    row = await db.scalar(_LOCK, {"key": key})
    assert row is not None
    return FailureState(
        last_failure_at=row.last_failure_at,
        failures=[datetime.fromtimestamp(t, UTC) for t in row.failures],
        lockouts=row.lockouts,
        locked_until=row.locked_until,
    )


async def save(db: AsyncSession, key: str, state: FailureState) -> None:
    await db.execute(
        update(TokenFailureRow)
        .where(TokenFailureRow.key == key)
        .values(
            failures=[t.timestamp() for t in state.failures],
            lockouts=state.lockouts,
            locked_until=state.locked_until,
            last_failure_at=state.last_failure_at,
        )
    )


async def forget(db: AsyncSession, key: str) -> None:
    await db.execute(_FORGET, {"key": key})


async def prune(tx: Transaction, now: datetime) -> None:
    """Drop keys quiet for ``FORGET_AFTER`` (indexed: costs what is removed)."""
    await tx.execute(_PRUNE, before=now - FORGET_AFTER)
