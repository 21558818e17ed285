"""Client registry of the built-in authorization server: ids, hashed secrets, scopes.

A secret is shown once, at creation, and only a slow hash of it is stored (scrypt with a
per-client salt, standard library, no extra dependency), so a leaked database does not
hand out working credentials. The hash is checked in a worker thread: scrypt takes tens
of milliseconds and must not stall the event loop.

Authentication costs the same whether the client exists or not (an unknown id is checked
against a dummy hash), and the final comparison is constant-time, so neither timing nor
the error tells an attacker which client ids exist.

Revocation is recorded in the row (``revoked_at``); ``revocation_epoch()`` changes in this
process each time a client is revoked here, so a verifier's cache can drop its answers at
once instead of waiting for them to age out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from s2cvpn import errors
from s2cvpn.config import ALL_SCOPES
from s2cvpn.storage import token_failures
from s2cvpn.storage.tables import ClientRow

# scrypt cost: 2**15 * 8 * 128 B = 32 MiB and ~50-100 ms per check on a server core.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
SECRET_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
_HASH_BYTES = 32
_SCHEME = "scrypt"

_revocation_epoch = 0


def revocation_epoch() -> int:
    """A counter bumped by every ``revoke_client`` in this process (see the module doc)."""
    return _revocation_epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=_HASH_BYTES
    )


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash``: the cost travels with the hash so it can be raised later."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, encoded: str) -> bool:
    """Constant-time check of ``secret`` against a ``hash_secret`` string; False if malformed."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != _SCHEME:
            return False
        expected = _unb64(digest)
        actual = _scrypt(secret, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Unknown client ids are checked against this, so they cost as much as known ones.
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(SECRET_BYTES))


def normalize_scopes(scopes: Sequence[str]) -> list[str]:
    """Known scope names, de-duplicated in their given order; ValueError names the unknown ones."""
    unknown = sorted({s for s in scopes if s not in ALL_SCOPES})
    if unknown:
        raise ValueError(f"unknown scope(s): {' '.join(unknown)}")
    return list(dict.fromkeys(scopes))


async def create_client(
    db: AsyncSession, *, name: str, scopes: Sequence[str], now: datetime
) -> tuple[str, str]:
    """Register a client; returns ``(client_id, client_secret)``. The secret is not kept."""
    granted = normalize_scopes(scopes)
    if not name or len(name) > 128:
        raise ValueError("name must be 1..128 characters")
    client_id = "c_" + secrets.token_hex(12)
    client_secret = secrets.token_urlsafe(SECRET_BYTES)
    secret_hash = await asyncio.to_thread(hash_secret, client_secret)
    db.add(
        ClientRow(
            client_id=client_id,
            name=name,
            secret_hash=secret_hash,
            scopes=" ".join(granted),
            created_at=now,
            revoked_at=None,
        )
    )
    await db.commit()
    return client_id, client_secret


async def authenticate_client(db: AsyncSession, client_id: str, client_secret: str) -> ClientRow:
    """The client row when the secret matches and the client is not revoked.

    Every failure raises the same ``Unauthenticated`` message, after the same hashing work.
    The read transaction ends before the slow hash (on SQLite every transaction holds the
    write lock), and the row comes back detached, so the caller can go on to open other
    sessions, as the token service does, without waiting on this one.
    """
    row = await db.get(ClientRow, client_id) if 0 < len(client_id) <= 64 else None
    if row is not None:
        db.expunge(row)
    await db.commit()
    encoded = row.secret_hash if row is not None else _DUMMY_HASH
    matches = await asyncio.to_thread(verify_secret, client_secret, encoded)
    if row is None or not matches or row.revoked_at is not None:
        raise errors.Unauthenticated("invalid client credentials")
    return row


async def get_client(db: AsyncSession, client_id: str) -> ClientRow | None:
    return await db.get(ClientRow, client_id)


async def list_clients(db: AsyncSession) -> list[ClientRow]:
    """All clients, revoked ones included, oldest first."""
    result = await db.execute(select(ClientRow).order_by(ClientRow.created_at, ClientRow.client_id))
    return list(result.scalars())


async def revoke_client(db: AsyncSession, client_id: str, now: datetime) -> bool:
    """Revoke a client: its secret stops working and its tokens are refused.

    True when this call revoked it; False for an unknown or already revoked client.
    """
    global _revocation_epoch
    row = await db.get(ClientRow, client_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    await db.commit()
    _revocation_epoch += 1
    return True


class FailureThrottle:
    """Slows down secret guessing on the token endpoint: exponential lockouts per key.

    A key is ``client:<id>`` or ``addr:<remote address>``. After ``limit`` failures within
    ``window`` the key is locked for ``base_lockout``; once a key has been locked, each
    further failure (until it has been quiet for ``token_failures.FORGET_AFTER``) locks it
    again for twice as long, up to ``max_lockout``. A success clears the client's key only:
    one valid credential must not reset an address that is guessing other clients' secrets.

    The state is in the database (``storage.token_failures``), so every replica counts the
    same failures and a restart lifts no lockout; the worker's purge drops quiet keys.
    """

    def __init__(
        self,
        sessions: async_sessionmaker,
        *,
        client_limit: int = 5,
        address_limit: int = 20,
        window: timedelta = timedelta(minutes=5),
        base_lockout: timedelta = timedelta(seconds=30),
        max_lockout: timedelta = timedelta(hours=1),
    ) -> None:
        self.sessions = sessions
        self.client_limit = client_limit
        self.address_limit = address_limit
        self.window = window
        self.base_lockout = base_lockout
        self.max_lockout = max_lockout

    async def retry_after(self, keys: Sequence[str], now: datetime) -> int | None:
        """Whole seconds until every given key is unlocked; None when none is locked."""
        async with self.sessions() as db:
            untils = await token_failures.locked_until(db, keys)
        longest = max(((until - now).total_seconds() for until in untils), default=0.0)
        return math.ceil(longest) if longest > 0 else None

    async def failure(self, key: str, limit: int, now: datetime) -> None:
        async with self.sessions() as db, db.begin():
            state = await token_failures.lock(db, key, now)
            self.count_failure(state, limit, now)
            await token_failures.save(db, key, state)

    def count_failure(self, state: token_failures.FailureState, limit: int, now: datetime) -> None:
        """The policy, on one key's state (pure)."""
        if now - state.last_failure_at > token_failures.FORGET_AFTER:
            state.failures, state.lockouts, state.locked_until = [], 0, None
        state.last_failure_at = now
        state.failures = [t for t in state.failures if now - t < self.window] + [now]
        if state.lockouts > 0 or len(state.failures) >= limit:
            state.locked_until = now + min(self.base_lockout * (2**state.lockouts), self.max_lockout)
            state.lockouts += 1
            state.failures = []

    async def success(self, key: str) -> None:
        async with self.sessions() as db, db.begin():
            await token_failures.forget(db, key)
