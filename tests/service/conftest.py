"""Fixtures of the service tests: an empty, migrated database of the backend under test."""

from __future__ import annotations

import pytest


@pytest.fixture
def migrated_url(fresh_database_url: str) -> str:
    from s2cvpn.storage import migrate

    migrate.upgrade(fresh_database_url)
    return fresh_database_url
