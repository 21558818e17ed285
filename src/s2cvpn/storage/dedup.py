"""Duplicate detection: one ``active_keys`` row per live session, whose primary key refuses
a twin even when two creates race (the loser's insert is skipped, or waits for the
winner's commit on PostgreSQL and is skipped then)."""

from __future__ import annotations

from s2cvpn.storage.driver import Sql, Transaction

_CLAIM = Sql("INSERT INTO active_keys (dedup_key, session_id) VALUES (:key, :session) ON CONFLICT DO NOTHING RETURNING dedup_key")
_FREE = Sql("DELETE FROM active_keys WHERE session_id = :session")


async def claim_key(tx: Transaction, dedup_key: str, session_id: str) -> bool:
    """Hold ``dedup_key`` for the session; False when a live session already holds it."""
    return await tx.fetchrow(_CLAIM, key=dedup_key, session=session_id) is not None


async def free_key(tx: Transaction, session_id: str) -> None:
    await tx.execute(_FREE, session=session_id)
