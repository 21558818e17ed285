"""Operator commands for the built-in authorization server: clients, tokens, keys.

``register(app)`` adds ``clients create|list|delete``, ``token`` and ``keys rotate`` to the
main typer app. Each command builds ``Settings()``, brings the schema up to date with the
project's migrations, and runs its async work with ``asyncio.run``. Output is JSON (or a
bare token / kid) so scripts can consume it; a client secret is printed once, at creation.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from s2cvpn import errors
from s2cvpn.auth import clients, keys
from s2cvpn.auth.tokens import OAuthError, TokenService
from s2cvpn.clock import SystemClock
from s2cvpn.config import ALL_SCOPES, Settings
from s2cvpn.storage.db import create_engine, session_factory

T = TypeVar("T")


def _migrate(database_url: str) -> None:
    """Bring the schema up to date; a separate step because Alembic runs its own loop."""
    from s2cvpn.storage import migrate

    result = migrate.upgrade(database_url)
    if inspect.isawaitable(result):
        asyncio.run(result)  # type: ignore[arg-type]


def _run(work: Callable[[Settings, AsyncSession, async_sessionmaker], Awaitable[T]]) -> T:
    """Settings, migrated schema, a DB session (and its factory) for ``work``; engine disposed after."""
    settings = Settings()
    _migrate(settings.database_url)

    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            sessions = session_factory(engine)
            async with sessions() as db:
                return await work(settings, db, sessions)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def register(app: typer.Typer) -> None:
    """Add the ``clients``, ``token`` and ``keys`` commands to ``app``."""
    clients_app = typer.Typer(help="OAuth clients of the built-in authorization server.", no_args_is_help=True)
    keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
    app.add_typer(clients_app, name="clients")
    app.add_typer(keys_app, name="keys")

    @clients_app.command("create")
    def create(
        name: Annotated[str, typer.Option(help="Human-readable client name.")],
        scopes: Annotated[str | None, typer.Option(help="Space-separated scopes (default: all).")] = None,
    ) -> None:
        """Register a client; prints its id and secret (shown only this once)."""
        wanted = scopes.split() if scopes is not None else list(ALL_SCOPES)

        async def work(settings: Settings, db: AsyncSession, sessions: async_sessionmaker) -> tuple[str, str]:
            return await clients.create_client(db, name=name, scopes=wanted, now=SystemClock().now())

        try:
            client_id, client_secret = _run(work)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        _echo_json({"client_id": client_id, "client_secret": client_secret})

    @clients_app.command("list")
    def list_() -> None:
        """All clients (never their secrets)."""

        async def work(settings: Settings, db: AsyncSession, sessions: async_sessionmaker) -> list[dict[str, Any]]:
            return [
                {
                    "client_id": row.client_id,
                    "name": row.name,
                    "scopes": row.scopes.split(),
                    "created_at": row.created_at.isoformat(),
                    "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                }
                for row in await clients.list_clients(db)
            ]

        _echo_json(_run(work))

    @clients_app.command("delete")
    def delete(client_id: Annotated[str, typer.Argument(help="The client to revoke.")]) -> None:
        """Revoke a client: its secret stops working and its tokens are refused within seconds."""

        async def work(settings: Settings, db: AsyncSession, sessions: async_sessionmaker) -> bool:
            return await clients.revoke_client(db, client_id, SystemClock().now())

        if not _run(work):
            typer.echo(f"error: no active client {client_id}", err=True)
            raise typer.Exit(1)
        _echo_json({"client_id": client_id, "revoked": True})

    @app.command("token")
    def token(
        client_id: Annotated[str, typer.Option(help="Client id.")],
        client_secret: Annotated[
            str, typer.Option(help="Client secret.", envvar="S2CVPN_CLIENT_SECRET", show_envvar=True)
        ],
        scope: Annotated[str | None, typer.Option(help="Space-separated scopes (default: all granted).")] = None,
    ) -> None:
        """Print an access token for a client (as the token endpoint would issue it)."""

        async def work(settings: Settings, db: AsyncSession, sessions: async_sessionmaker) -> str:
            client = await clients.authenticate_client(db, client_id, client_secret)
            service = TokenService(settings, sessions, SystemClock())
            body = await service.issue(client, scope)
            return str(body["access_token"])

        try:
            typer.echo(_run(work))
        except errors.Unauthenticated as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from exc
        except OAuthError as exc:
            typer.echo(f"error: {exc.error}: {exc.description}", err=True)
            raise typer.Exit(2) from exc

    @keys_app.command("rotate")
    def rotate(
        publish_delay: Annotated[
            float, typer.Option(help="Seconds between publishing the new key and signing with it.")
        ] = keys.ROTATION_PUBLISH_DELAY.total_seconds(),
    ) -> None:
        """Publish a new signing key; prints its kid. Old keys stay in JWKS until their tokens expire."""

        async def work(settings: Settings, db: AsyncSession, sessions: async_sessionmaker) -> str:
            row = await keys.rotate_keys(
                db,
                SystemClock().now(),
                grace=keys.default_grace(settings.token_ttl_seconds),
                publish_delay=timedelta(seconds=publish_delay),
            )
            return row.kid

        typer.echo(_run(work))
