"""``s2cvpn lab``: build, inspect, use and remove the netns lab.

    s2cvpn lab up [--inventory FILE]       every router, link and CE of the inventory
    s2cvpn lab status                      what exists, by name
    s2cvpn lab exec --ce 198.51.100.10 -- ping 10.200.0.10
    s2cvpn lab exec --session ID --server 10.200.0.10 -- ip addr
    s2cvpn lab down                        remove every object of the lab, by name
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from s2cvpn.drivers.netns import runner, topology
from s2cvpn.drivers.netns.names import Names

lab_app = typer.Typer(help="The netns data-plane lab (root).", no_args_is_help=True)
PrefixOption = Annotated[str, typer.Option(help="Name prefix of every lab object (default: S2CVPN_NETNS_PREFIX, s2c)")]
InventoryOption = Annotated[Path | None, typer.Option(help="Inventory YAML (default: settings' inventory)")]


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")


def _inventory(path: Path | None):  # type: ignore[no-untyped-def]
    from s2cvpn.config import Settings
    from s2cvpn.network.loader import load_inventory

    return load_inventory(path or Settings().inventory)


def _prefix(given: str) -> str:
    """The --prefix given, else the service's own setting, so the CLI sees the lab it drives."""
    from s2cvpn.config import Settings

    return given or Settings().netns_prefix


def _root() -> None:
    if os.geteuid() != 0:
        typer.echo("the lab needs root (network namespaces)", err=True)
        raise typer.Exit(1)


@lab_app.command()
def up(inventory: InventoryOption = None, prefix: PrefixOption = "") -> None:
    """Build the inventory as namespaces, veth links and underlay routes (replaces a lab)."""
    from rich.progress import Progress

    from s2cvpn.drivers.netns import NetnsDriver

    _root()
    prefix = _prefix(prefix)
    inv = _inventory(inventory)
    driver = NetnsDriver(inv, prefix=prefix)
    with Progress(transient=True) as progress:
        task = progress.add_task("lab", total=3)

        def report(step: str, done: int, total: int) -> None:
            progress.update(task, description=step, completed=done, total=total)

        driver.lab_up(report)
    typer.echo(f"lab {prefix} up: {len(inv.nodes)} routers, {len(inv.links)} links, {len(inv.attachments)} CEs")


@lab_app.command()
def down(prefix: PrefixOption = "") -> None:
    """Remove every namespace, link and daemon of the lab (sessions included)."""
    from s2cvpn.drivers.netns import NetnsDriver

    _root()
    driver = NetnsDriver(_empty_inventory(), prefix=_prefix(prefix))
    removed = driver.lab_down()
    typer.echo(f"removed {len(removed)} namespaces")


@lab_app.command()
def status(prefix: PrefixOption = "") -> None:
    """List the lab's routers, CEs and session namespaces."""
    from rich.console import Console
    from rich.table import Table

    prefix = _prefix(prefix)
    names = Names(prefix)
    kinds = topology.status(names)
    table = Table(title=f"lab {prefix}")
    table.add_column("kind")
    table.add_column("count", justify="right")
    table.add_column("namespaces")
    for kind, found in kinds.items():
        table.add_row(kind, str(len(found)), ", ".join(found[:6]) + (" ..." if len(found) > 6 else ""))
    sessions = sorted({p[1] for ns in kinds["sessions"] if (p := names.parse_session_ns(ns))})
    Console().print(table)
    typer.echo(f"sessions: {', '.join(sessions) if sessions else '(none)'}")


@lab_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec(  # noqa: A001 - the subcommand is called exec
    ctx: typer.Context,
    ce: Annotated[str | None, typer.Option(help="Run in the CE router that has this address")] = None,
    session: Annotated[str | None, typer.Option(help="Session id (with --server)")] = None,
    server: Annotated[str | None, typer.Option(help="Application server address in the session's cloud")] = None,
    inventory: InventoryOption = None,
    prefix: PrefixOption = "",
) -> None:
    """Run a command (after --) in a CE router or in a session's application server."""
    _root()
    command = list(ctx.args)
    if not command:
        typer.echo("give the command after --", err=True)
        raise typer.Exit(2)
    names = Names(_prefix(prefix))
    ns = _ce_namespace(names, ce, inventory) if ce else _server_namespace(names, session, server)
    os.execvp("ip", ["ip", "netns", "exec", ns, *command])


def _ce_namespace(names: Names, address: str, inventory: Path | None) -> str:
    wanted = ipaddress.ip_address(address)
    for att_id, att in _inventory(inventory).attachments.items():
        if wanted in att.ce_addresses:
            ns = names.ce(att_id)
            if not runner.netns_exists(ns):
                typer.echo(f"CE {address} ({att_id}) is not in the lab: run `s2cvpn lab up`", err=True)
                raise typer.Exit(1)
            return ns
    typer.echo(f"no attachment has CE address {address}", err=True)
    raise typer.Exit(1)


def _server_namespace(names: Names, session: str | None, server: str | None) -> str:
    if not session or not server:
        typer.echo("give --ce ADDRESS, or --session ID with --server ADDRESS", err=True)
        raise typer.Exit(2)
    for ns in runner.list_netns():
        parsed = names.parse_session_ns(ns)
        if parsed and parsed[1] == session and parsed[2] == "e":
            local = runner.output(["ip", "-n", ns, "route", "get", server], check=False)
            if not local.startswith("local"):
                typer.echo(f"{server} is not an application server of session {session}", err=True)
                raise typer.Exit(1)
            return ns
    typer.echo(f"session {session} is not in the lab", err=True)
    raise typer.Exit(1)


def _empty_inventory():  # type: ignore[no-untyped-def]
    """`lab down` works by prefix alone: it needs no (possibly broken) inventory file."""
    from s2cvpn.network.inventory import Inventory, Pricing, Provider

    return Inventory(Provider("lab", 64500, "EUR"), {}, Pricing({}, 1.0), {}, {}, {})
