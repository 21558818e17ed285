"""Signing keys: persisted across restarts, rotated with publish-before-use and grace."""

from __future__ import annotations

from typing import Any

from datetime import timedelta

import jwt
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.auth import keys
from s2cvpn.auth.tokens import TokenService
from s2cvpn.config import Settings
from s2cvpn.storage.tables import ClientRow

FakeClock = Any  # the conftest fixture: .now() and .advance(seconds)


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def test_first_key_is_created_once_and_survives_a_restart(
    settings: Settings, sessions: async_sessionmaker, clock: FakeClock, client: tuple[ClientRow, str]
) -> None:
    first = TokenService(settings, sessions, clock)
    await first.start()
    token = (await first.issue(client[0], None))["access_token"]
    restarted = TokenService(settings, sessions, clock)  # a new process: nothing in memory
    await restarted.start()
    async with sessions() as db:
        rows = await keys.load_keys(db)
        assert len(rows) == 1
        assert (await keys.ensure_signing_key(db, clock.now())).kid == rows[0].kid
    assert (await restarted.verify(token)).client_id == client[0].client_id
    assert _kid((await restarted.issue(client[0], None))["access_token"]) == rows[0].kid


async def test_rotation_publishes_before_use_and_keeps_old_key_until_its_tokens_expire(
    tokens: TokenService, sessions: async_sessionmaker, clock: FakeClock, client: tuple[ClientRow, str], settings: Settings
) -> None:
    row = client[0]
    old_token = (await tokens.issue(row, None))["access_token"]
    old_kid = _kid(old_token)
    grace = keys.default_grace(settings.token_ttl_seconds)
    async with sessions() as db:
        new = await keys.rotate_keys(db, clock.now(), grace=grace, publish_delay=timedelta(seconds=60))
        published = [k["kid"] for k in (await keys.jwks(db, clock.now()))["keys"]]
        assert published == [old_kid, new.kid]  # the new key is public at once
        assert (await keys.current_signing_key(db, clock.now())).kid == old_kid  # type: ignore[union-attr]

    clock.advance(59)  # key cache is 30 s old at most: this process has seen the new key by now
    assert _kid((await tokens.issue(row, None))["access_token"]) == old_kid
    clock.advance(1)
    new_token = (await tokens.issue(row, None))["access_token"]
    assert _kid(new_token) == new.kid
    assert (await tokens.verify(old_token)).client_id == row.client_id  # old tokens still verify
    assert (await tokens.verify(new_token)).client_id == row.client_id

    clock.advance(grace.total_seconds() - 1)  # one second before the old key leaves JWKS
    async with sessions() as db:
        assert old_kid in [k["kid"] for k in (await keys.jwks(db, clock.now()))["keys"]]
    clock.advance(1)
    async with sessions() as db:
        assert [k["kid"] for k in (await keys.jwks(db, clock.now()))["keys"]] == [new.kid]
        await keys.rotate_keys(db, clock.now(), grace=grace)
        assert old_kid not in [r.kid for r in await keys.load_keys(db)]  # private key deleted


async def test_a_token_signed_by_a_key_past_its_grace_is_refused(
    tokens: TokenService, sessions: async_sessionmaker, clock: FakeClock, client: tuple[ClientRow, str]
) -> None:
    token = (await tokens.issue(client[0], None))["access_token"]
    async with sessions() as db:
        await keys.rotate_keys(db, clock.now(), grace=timedelta(seconds=10), publish_delay=timedelta(0))
    clock.advance(31)  # past the key's grace and the key cache; the token itself has 569 s left
    with pytest.raises(errors.Unauthenticated, match="unknown key"):
        await tokens.verify(token)


async def test_rotation_by_another_process_is_picked_up_on_unknown_kid(
    settings: Settings, sessions: async_sessionmaker, clock: FakeClock, client: tuple[ClientRow, str]
) -> None:
    signer = TokenService(settings, sessions, clock)
    verifier = TokenService(settings, sessions, clock)
    await signer.start()
    await verifier.start()
    async with sessions() as db:
        await keys.rotate_keys(db, clock.now(), grace=timedelta(hours=1), publish_delay=timedelta(0))
    clock.advance(31)  # the signer's cache ages out; the verifier's too, but it reloads on the unknown kid anyway
    token = (await signer.issue(client[0], None))["access_token"]
    assert (await verifier.verify(token)).client_id == client[0].client_id
