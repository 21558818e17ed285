"""The ``s2cvpn`` command: serve, worker, migrate, sessions, and each domain's own group
(clients/token/keys, inventory, lab), registered from its package."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from s2cvpn.config import Settings

class EventLoop(enum.StrEnum):
    asyncio = "asyncio"
    uvloop = "uvloop"


app = typer.Typer(help="Site-to-Cloud VPN service (CAMARA S2C VPN API).", no_args_is_help=True, add_completion=False)
sessions_app = typer.Typer(help="Operator views of sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")


# Libraries that log statement parameters or request headers at DEBUG: kept at WARNING so
# that secrets (sink credentials, tokens) never reach the log, whatever the level asked.
QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore", "hpack", "multipart")


def _settings_or_exit() -> Settings:
    """Settings with a valid inventory, or a clear message and exit 2: never a half start."""
    from s2cvpn.network.loader import InventoryError, load_inventory

    settings = Settings()
    try:
        load_inventory(settings.inventory)
    except InventoryError as exc:
        typer.echo(f"s2cvpn: the inventory {settings.inventory} is invalid:\n{exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"s2cvpn: cannot read the inventory {settings.inventory}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    return settings


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve the API only; run `s2cvpn worker` elsewhere")] = False,
    certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to terminate TLS here")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
    log_level: Annotated[str, typer.Option(help="Log level")] = "info",
    loop: Annotated[
        EventLoop, typer.Option(help="Event loop: asyncio keeps tail latency low under saturation, uvloop gives more requests/s")
    ] = EventLoop.asyncio,
) -> None:
    """Run the API server (uvicorn); migrations are applied at start."""
    import uvicorn

    from s2cvpn.app import create_app

    _logging(log_level)
    settings = _settings_or_exit()
    application = create_app(settings, embed_worker=not no_worker)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        timeout_graceful_shutdown=20,
        proxy_headers=True,
        loop=loop.value,
    )


@app.command()
def worker(
    log_level: Annotated[str, typer.Option(help="Log level")] = "info",
    metrics_port: Annotated[int, typer.Option(help="Serve Prometheus /metrics on this port (0: off)")] = 0,
    metrics_host: Annotated[str, typer.Option(help="Address of the metrics endpoint")] = "127.0.0.1",
) -> None:
    """Run background work alone: provisioning, expiry, purge, notifications, reconciliation.

    SIGTERM/SIGINT stop it gracefully: the job in hand finishes, claimed jobs are released.
    """
    from s2cvpn.bootstrap import open_context
    from s2cvpn.jobs.worker import Worker

    _logging(log_level)
    settings = _settings_or_exit()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with open_context(settings) as ctx:
            background = Worker(ctx)
            await background.start()
            await stop.wait()
            await background.stop()

    asyncio.run(run())


@app.command()
def migrate() -> None:
    """Apply database migrations to S2CVPN_DATABASE_URL."""
    from s2cvpn.storage import migrate as migrations

    migrations.upgrade(Settings().database_url)
    typer.echo("database is up to date")


def _with_context(work: Any) -> Any:
    from s2cvpn.bootstrap import open_context

    async def run() -> Any:
        async with open_context(Settings()) as ctx:
            return await work(ctx)

    return asyncio.run(run())


@sessions_app.command("l3nm")
def sessions_l3nm(session_id: str) -> None:
    """Print the IETF L3NM (RFC 9182) document of a session's VPN service."""
    from s2cvpn.service.specs import render_l3nm
    from s2cvpn.storage.tables import SessionRow

    async def work(ctx: Any) -> Any:
        async with ctx.db() as db:
            row = await db.get(SessionRow, session_id)
        if row is None or row.plan is None:
            return None
        return render_l3nm(row, ctx.inventory)

    document = _with_context(work)
    if document is None:
        typer.echo(f"no session {session_id}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(document, indent=2))


@sessions_app.command("list")
def sessions_list() -> None:
    """Print every session (all clients) with its status, as JSON lines."""
    from sqlalchemy import select

    from s2cvpn.storage.tables import SessionRow

    async def work(ctx: Any) -> list[dict[str, Any]]:
        async with ctx.db() as db:
            rows = (await db.scalars(select(SessionRow).order_by(SessionRow.created_at))).all()
        return [
            {"sessionId": r.session_id, "clientId": r.client_id, "status": r.status, "statusInfo": r.status_info,
             "expiresAt": r.expires_at.isoformat() if r.expires_at else None}
            for r in rows
        ]

    for item in _with_context(work):
        typer.echo(json.dumps(item))


DOMAIN_CLIS = ("s2cvpn.auth.cli", "s2cvpn.network.cli", "s2cvpn.drivers.netns.cli")


def _register_domains() -> None:
    import importlib

    for module in DOMAIN_CLIS:
        importlib.import_module(module).register(app)


def main() -> None:
    _register_domains()
    app()
