"""Scale and fault tests: real processes on a fresh PostgreSQL database each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scale.support import Cluster


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(pg_url, tmp_path) as running:
        yield running
