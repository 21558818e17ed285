"""Scale and fault tests: real processes on a fresh PostgreSQL database each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scale.support import Cluster
from tests.support.databases import postgres_database, postgres_reason


@pytest.fixture
def pg_url() -> Iterator[str]:
    reason = postgres_reason()
    if reason:
        pytest.skip(reason)
    with postgres_database() as url:
        yield url


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(pg_url, tmp_path) as running:
        yield running
