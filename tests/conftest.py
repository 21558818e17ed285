"""Shared fixtures: databases (SQLite file, fresh PostgreSQL database), real server
processes, registered clients, and a real HTTP sink that records notifications."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import postgres_database, postgres_reason
from tests.support.servers import ServerProcess, free_port
from tests.support.sink import Sink


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On CI, a skipped PostgreSQL test would hide a missing service: fail instead."""
    if os.environ.get("CI") and postgres_reason():
        raise pytest.UsageError(f"CI must have PostgreSQL: {postgres_reason()}")


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 's2cvpn.db'}"
        return
    reason = postgres_reason()
    if reason:
        pytest.skip(reason)
    with postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS, scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database shared by the session-wide server of one backend."""
    yield from _database(request.param, tmp_path_factory.mktemp("db"))


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database, for the tests of what only PostgreSQL does."""
    yield from _database("postgres", tmp_path)


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same backend, for tests that run their own servers."""
    yield from _database("sqlite" if database_url.startswith("sqlite") else "postgres", tmp_path)


@pytest.fixture
def migrated_url(fresh_database_url: str) -> str:
    """``fresh_database_url``, migrated: the schema and nothing in it."""
    from s2cvpn.storage import migrate

    migrate.upgrade(fresh_database_url)
    return fresh_database_url


@pytest.fixture
def migrated_pg_url(pg_url: str) -> str:
    """``pg_url``, migrated: for the tests of what only PostgreSQL does."""
    from s2cvpn.storage import migrate

    migrate.upgrade(pg_url)
    return pg_url


@pytest.fixture(scope="session")
def sink() -> Iterator[Sink]:
    with Sink() as running:
        yield running


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real ``s2cvpn serve`` per database backend for the API tests."""
    workdir = tmp_path_factory.mktemp("server")
    with ServerProcess(database_url=database_url, port=free_port(), workdir=workdir) as running:
        yield running


@pytest.fixture
def client(server: ServerProcess):  # type: ignore[no-untyped-def]
    """A fresh OAuth client with every scope, and an httpx client carrying its token."""
    with server.api_client(name=f"test-{uuid.uuid4().hex[:8]}") as api:
        yield api
        api.delete_all_sessions()


@pytest.fixture
def other_client(server: ServerProcess):  # type: ignore[no-untyped-def]
    with server.api_client(name=f"other-{uuid.uuid4().hex[:8]}") as api:
        yield api
        api.delete_all_sessions()
