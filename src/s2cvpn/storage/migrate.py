"""Schema migrations with Alembic, run from code (``s2cvpn migrate`` and at ``serve`` start).

Blocking: Alembic drives its own event loop in ``migrations/env.py``, so call this from a
thread when an event loop is already running.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from s2cvpn.storage.db import async_url, switch_to_wal

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    if make_url(database_url).get_backend_name() == "sqlite":
        switch_to_wal(database_url)
    command.upgrade(alembic_config(database_url), revision)
