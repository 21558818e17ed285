"""Idempotency keys: which session a client's ``Idempotency-Key`` created, and when."""

from __future__ import annotations

from datetime import datetime

from s2cvpn.storage.driver import Sql, Transaction

_FIRST = Sql("SELECT session_id FROM idempotency_keys WHERE client_id = :client AND key = :key AND created_at >= :since")
_REMEMBER = Sql("INSERT INTO idempotency_keys (client_id, key, session_id, created_at) VALUES (:client, :key, :session, :now)")
_FORGET = Sql("DELETE FROM idempotency_keys WHERE created_at < :before")


async def first_session(tx: Transaction, client_id: str, key: str, *, since: datetime) -> str | None:
    """The session the key created, if it was used since ``since``."""
    return await tx.fetchval(_FIRST, client=client_id, key=key, since=since)


async def remember(tx: Transaction, client_id: str, key: str, session_id: str, now: datetime) -> None:
    """Raises ``UniqueViolation`` when a concurrent request with the key committed first."""
    await tx.execute(_REMEMBER, client=client_id, key=key, session=session_id, now=now)


async def forget_older(tx: Transaction, before: datetime) -> None:
    """Drop the keys used before ``before`` (indexed: costs what is dropped)."""
    await tx.execute(_FORGET, before=before)
