"""The operator CLI (clients, token, keys) on a temp SQLite database, schema by the real migrations."""

from __future__ import annotations

import asyncio
import json

import pytest
import typer
from typer.testing import CliRunner

from s2cvpn.api.deps import Principal
from s2cvpn.auth import cli as auth_cli
from s2cvpn.auth import keys
from s2cvpn.auth.tokens import TokenService
from s2cvpn.clock import SystemClock
from s2cvpn.config import ALL_SCOPES, Settings
from s2cvpn.storage.db import create_engine, session_factory

READ = "site-to-cloud-vpn:sessions:read"


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("S2CVPN_DATABASE_URL", db_url)
    app = typer.Typer()
    auth_cli.register(app)
    return app


def _verify(token: str) -> Principal:
    async def main() -> Principal:
        settings = Settings()
        engine = create_engine(settings.database_url)
        try:
            return await TokenService(settings, session_factory(engine), SystemClock()).verify(token)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _jwks_kids() -> list[str]:
    async def main() -> list[str]:
        engine = create_engine(Settings().database_url)
        try:
            async with session_factory(engine)() as db:
                return [k["kid"] for k in (await keys.jwks(db, SystemClock().now()))["keys"]]
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_client_lifecycle_and_tokens(cli: typer.Typer) -> None:
    runner = CliRunner()
    created = runner.invoke(cli, ["clients", "create", "--name", "acme"])
    assert created.exit_code == 0, created.output
    acme = json.loads(created.stdout)
    assert set(acme) == {"client_id", "client_secret"} and len(acme["client_secret"]) >= 43

    ro = json.loads(runner.invoke(cli, ["clients", "create", "--name", "ro", "--scopes", READ]).stdout)
    bad = runner.invoke(cli, ["clients", "create", "--name", "bad", "--scopes", "admin"])
    assert bad.exit_code == 2 and "unknown scope" in bad.stderr

    listed = runner.invoke(cli, ["clients", "list"])
    assert listed.exit_code == 0
    rows = {c["client_id"]: c for c in json.loads(listed.stdout)}
    assert set(rows) == {acme["client_id"], ro["client_id"]}
    assert rows[acme["client_id"]]["scopes"] == list(ALL_SCOPES) and rows[ro["client_id"]]["scopes"] == [READ]
    assert acme["client_secret"] not in listed.stdout and "secret" not in listed.stdout

    issued = runner.invoke(cli, ["token", "--client-id", ro["client_id"], "--client-secret", ro["client_secret"]])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token
    assert _verify(token) == Principal(client_id=ro["client_id"], scopes=frozenset({READ}))

    env = {"S2CVPN_CLIENT_SECRET": acme["client_secret"]}  # the secret need not appear in the process list
    scoped = runner.invoke(cli, ["token", "--client-id", acme["client_id"], "--scope", READ], env=env)
    assert scoped.exit_code == 0 and _verify(scoped.stdout.strip()).scopes == {READ}

    wrong = runner.invoke(cli, ["token", "--client-id", ro["client_id"], "--client-secret", "nope"])
    assert wrong.exit_code == 1 and wrong.stdout == ""
    too_much = runner.invoke(cli, ["token", "--client-id", ro["client_id"], "--client-secret", ro["client_secret"],
                                   "--scope", "site-to-cloud-vpn:sessions:delete"])
    assert too_much.exit_code == 2 and "invalid_scope" in too_much.stderr

    deleted = runner.invoke(cli, ["clients", "delete", ro["client_id"]])
    assert deleted.exit_code == 0 and json.loads(deleted.stdout)["revoked"] is True
    assert json.loads(runner.invoke(cli, ["clients", "list"]).stdout)[1]["revoked_at"] is not None
    assert runner.invoke(cli, ["clients", "delete", ro["client_id"]]).exit_code == 1
    again = runner.invoke(cli, ["token", "--client-id", ro["client_id"], "--client-secret", ro["client_secret"]])
    assert again.exit_code == 1
    with pytest.raises(Exception, match="revoked"):
        _verify(token)


def test_keys_rotate_publishes_a_new_key(cli: typer.Typer) -> None:
    runner = CliRunner()
    created = json.loads(runner.invoke(cli, ["clients", "create", "--name", "acme"]).stdout)
    token = runner.invoke(cli, ["token", "--client-id", created["client_id"],
                                "--client-secret", created["client_secret"]]).stdout.strip()
    before = _jwks_kids()
    rotated = runner.invoke(cli, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    kid = rotated.stdout.strip()
    assert kid not in before and _jwks_kids() == [*before, kid]
    assert _verify(token).client_id == created["client_id"]  # the old key still verifies its tokens
