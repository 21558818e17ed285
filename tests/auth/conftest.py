"""Fixtures for the authorization server tests: temp SQLite schema, fake clock, services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from s2cvpn.auth import clients
from s2cvpn.auth.tokens import TokenService
from s2cvpn.config import ALL_SCOPES, Settings
from s2cvpn.storage.db import create_engine, session_factory
from s2cvpn.storage.tables import Base, ClientRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """Time that moves only when a test says so."""

    current: datetime = field(default=T0)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests hash many secrets; the production cost is checked in the hashing unit test."""
    monkeypatch.setattr(clients, "SCRYPT_N", 2**10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def real_clock() -> FakeClock:
    """A fake clock starting at the real now, for tokens stamped by another program."""
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'auth.db'}"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker:
    return session_factory(engine)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        public_url="http://127.0.0.1:8080",
        token_audience="s2cvpn",
        token_ttl_seconds=600,
    )


@pytest.fixture
async def tokens(settings: Settings, sessions: async_sessionmaker, clock: FakeClock) -> AsyncIterator[TokenService]:
    service = TokenService(settings, sessions, clock)
    await service.start()
    yield service
    await service.aclose()


@pytest.fixture
async def client(sessions: async_sessionmaker, clock: FakeClock) -> tuple[ClientRow, str]:
    """A registered client with every scope: (row, secret)."""
    async with sessions() as db:
        client_id, secret = await clients.create_client(db, name="acme", scopes=ALL_SCOPES, now=clock.now())
        row = await clients.authenticate_client(db, client_id, secret)
    return row, secret
