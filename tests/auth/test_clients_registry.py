"""Client registry on a real (SQLite) database: create, authenticate, list, revoke."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.auth import clients
from s2cvpn.config import ALL_SCOPES
from s2cvpn.storage.tables import ClientRow

FakeClock = Any  # the conftest fixture: .now() and .advance(seconds)


async def test_create_stores_only_a_hash_of_a_strong_secret(sessions: async_sessionmaker, clock: FakeClock) -> None:
    async with sessions() as db:
        client_id, secret = await clients.create_client(db, name="acme", scopes=[ALL_SCOPES[1]], now=clock.now())
    assert len(secret) >= 43  # 32 random bytes, url-safe base64
    async with sessions() as db:
        row = await db.get(ClientRow, client_id)
    assert row is not None
    assert secret not in row.secret_hash and row.secret_hash.startswith("scrypt$")
    assert row.scopes == ALL_SCOPES[1]
    assert row.created_at == clock.now() and row.revoked_at is None


async def test_authenticate_right_and_wrong_secret(client: tuple[ClientRow, str], sessions: async_sessionmaker) -> None:
    row, secret = client
    async with sessions() as db:
        assert (await clients.authenticate_client(db, row.client_id, secret)).client_id == row.client_id
        with pytest.raises(errors.Unauthenticated):
            await clients.authenticate_client(db, row.client_id, secret + "x")


async def test_unknown_client_costs_one_hash_check_like_a_known_one(
    client: tuple[ClientRow, str], sessions: async_sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = clients.verify_secret

    def spy(secret: str, encoded: str) -> bool:
        calls.append(encoded)
        return real(secret, encoded)

    monkeypatch.setattr(clients, "verify_secret", spy)
    async with sessions() as db:
        for client_id in ("c_nobody", "x" * 500):
            with pytest.raises(errors.Unauthenticated) as refused:
                await clients.authenticate_client(db, client_id, "guess")
            assert refused.value.message == "invalid client credentials"  # same message as a wrong secret
    assert calls == [clients._DUMMY_HASH, clients._DUMMY_HASH]


async def test_unknown_scope_is_refused_and_nothing_is_stored(sessions: async_sessionmaker, clock: FakeClock) -> None:
    async with sessions() as db:
        with pytest.raises(ValueError, match="unknown scope"):
            await clients.create_client(db, name="bad", scopes=["admin"], now=clock.now())
        assert await clients.list_clients(db) == []


async def test_list_and_revoke(client: tuple[ClientRow, str], sessions: async_sessionmaker, clock: FakeClock) -> None:
    row, secret = client
    epoch = clients.revocation_epoch()
    clock.advance(1)
    async with sessions() as db:
        other_id, _ = await clients.create_client(db, name="other", scopes=ALL_SCOPES, now=clock.now())
        assert [c.client_id for c in await clients.list_clients(db)] == [row.client_id, other_id]  # oldest first
        assert await clients.revoke_client(db, row.client_id, clock.now()) is True
        assert await clients.revoke_client(db, row.client_id, clock.now()) is False  # already revoked
        assert await clients.revoke_client(db, "c_unknown", clock.now()) is False
    assert clients.revocation_epoch() == epoch + 1
    async with sessions() as db:
        listed = {c.client_id: c for c in await clients.list_clients(db)}
        assert listed[row.client_id].revoked_at == clock.now()
        assert listed[other_id].revoked_at is None
        with pytest.raises(errors.Unauthenticated):
            await clients.authenticate_client(db, row.client_id, secret)  # right secret, revoked client
