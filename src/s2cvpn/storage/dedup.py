"""Duplicate detection: one ``active_keys`` row per live session, whose primary key refuses
a twin even when two creates race (the loser's insert is skipped, or waits for the
winner's commit on PostgreSQL and is skipped then)."""

from __future__ import annotations

from sqlalchemy import bindparam, delete
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.storage.db import insert_or_skip
from s2cvpn.storage.tables import ActiveKeyRow


_CLAIM = insert_or_skip(ActiveKeyRow.__table__, ActiveKeyRow.dedup_key)
_FREE = delete(ActiveKeyRow.__table__).where(ActiveKeyRow.__table__.c.session_id == bindparam("session_id"))


async def claim_key(db: AsyncSession, dedup_key: str, session_id: str) -> bool:
    """Hold ``dedup_key`` for the session; False when a live session already holds it."""
    return await db.scalar(_CLAIM(db), {"dedup_key": dedup_key, "session_id": session_id}) is not None


async def free_key(db: AsyncSession, session_id: str) -> None:
    await db.execute(_FREE, {"session_id": session_id})
