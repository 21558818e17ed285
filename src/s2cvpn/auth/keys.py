"""Signing keys of the built-in authorization server: ES256, persisted, rotated safely.

Why ES256: an asymmetric key lets anyone verify with the published JWKS while only this
service can sign; P-256 keys are generated in microseconds and give short tokens.

Keys live in ``signing_keys`` (private key as unencrypted PKCS#8 PEM: protect the database
as you would the key), so tokens stay valid across restarts and every replica signs with
the same key. A key's life:

    created ── published in JWKS at once
    active_from ── starts signing (now + publish delay)
    retired_at ── stops signing (the next key's active_from)
    expires_at ── leaves JWKS (retired_at + grace, grace = token TTL + clock skew)

The publish delay (``ROTATION_PUBLISH_DELAY``, 60 s by default; 0 for the very first key,
when nobody can hold a cached JWKS yet) lets relying parties and other replicas fetch
the new key before any token signed with it reaches them; the JWKS endpoint's cache
lifetime must stay below it. The grace keeps a retired key verifiable until the last
token it signed has expired. Rows past ``expires_at`` are deleted at the next rotation.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn.storage.tables import SigningKeyRow

ALGORITHM = "ES256"
FIRST_KEY_PUBLISH_DELAY = timedelta(0)
ROTATION_PUBLISH_DELAY = timedelta(seconds=60)
CLOCK_SKEW = timedelta(seconds=60)  # covers verifiers' leeway and replicas' stale key caches


def default_grace(token_ttl_seconds: int) -> timedelta:
    """How long a retired key stays in JWKS: the life of its last token, plus skew."""
    return timedelta(seconds=token_ttl_seconds) + CLOCK_SKEW


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint: a kid derived from the key itself, so it never collides."""
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_key_row(now: datetime, active_from: datetime) -> SigningKeyRow:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = _thumbprint(jwk)
    jwk.update(kid=kid, use="sig", alg=ALGORITHM)
    return SigningKeyRow(
        kid=kid,
        private_pem=pem,
        public_jwk=jwk,
        created_at=now,
        active_from=active_from,
        retired_at=None,
        expires_at=None,
    )


def signing_key_at(rows: Sequence[SigningKeyRow], now: datetime) -> SigningKeyRow | None:
    """The key that signs at ``now``: the most recently activated one not yet retired."""
    live = [r for r in rows if r.active_from <= now and (r.retired_at is None or r.retired_at > now)]
    return max(live, key=lambda r: (r.active_from, r.created_at, r.kid), default=None)


def published_at(rows: Sequence[SigningKeyRow], now: datetime) -> list[SigningKeyRow]:
    """Keys in JWKS at ``now``: pending, signing, and retired ones within their grace."""
    shown = [r for r in rows if r.expires_at is None or r.expires_at > now]
    return sorted(shown, key=lambda r: (r.active_from, r.kid))


async def load_keys(db: AsyncSession) -> list[SigningKeyRow]:
    return list((await db.execute(select(SigningKeyRow))).scalars())


async def ensure_signing_key(
    db: AsyncSession, now: datetime, *, publish_delay: timedelta = FIRST_KEY_PUBLISH_DELAY
) -> SigningKeyRow:
    """The key that signs now (or the pending one); creates the first key if there is none.

    Called at start-up. Two replicas starting together on an empty table may both create
    a key: harmless, both are published and the newest signs.
    """
    rows = await load_keys(db)
    current = signing_key_at(rows, now)
    if current is not None:
        return current
    pending = [r for r in rows if r.active_from > now and (r.retired_at is None or r.retired_at > r.active_from)]
    if pending:
        return min(pending, key=lambda r: r.active_from)
    row = new_key_row(now, now + publish_delay)
    db.add(row)
    await db.commit()
    return row


async def rotate_keys(
    db: AsyncSession,
    now: datetime,
    *,
    grace: timedelta,
    publish_delay: timedelta = ROTATION_PUBLISH_DELAY,
) -> SigningKeyRow:
    """Publish a new key now, sign with it after ``publish_delay``; retire the others then.

    ``grace`` should be ``default_grace(settings.token_ttl_seconds)``. Keys whose grace has
    run out are deleted, so old private keys do not linger in the database.
    """
    await db.execute(delete(SigningKeyRow).where(SigningKeyRow.expires_at <= now))
    switch_at = now + publish_delay
    for row in await load_keys(db):
        if row.retired_at is None or row.retired_at > switch_at:
            row.retired_at = switch_at
            row.expires_at = switch_at + grace
    new = new_key_row(now, switch_at)
    db.add(new)
    await db.commit()
    return new


async def jwks(db: AsyncSession, now: datetime) -> dict[str, Any]:
    """The public JWK Set: every key that signs, will sign, or signed still-valid tokens."""
    return {"keys": [dict(r.public_jwk) for r in published_at(await load_keys(db), now)]}


async def current_signing_key(db: AsyncSession, now: datetime) -> SigningKeyRow | None:
    """The key that signs at ``now``; None before the first key is active."""
    return signing_key_at(await load_keys(db), now)
