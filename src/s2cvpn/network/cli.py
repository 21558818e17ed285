"""``s2cvpn inventory ...``: check an inventory file, generate a synthetic one.

``register(app)`` adds the sub-group to the main CLI (wired by ``s2cvpn/cli.py``), so this
module owns only its commands and never builds the application.
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from s2cvpn.network import generator, loader

inventory_app = typer.Typer(help="Inspect and generate network inventories.", no_args_is_help=True)


@inventory_app.command("check")
def check(file: Path = typer.Argument(..., help="Inventory YAML file to validate.")) -> None:
    """Validate FILE; print every problem with its location (exit 1), or a summary."""
    try:
        inventory = loader.load_inventory(file)
    except loader.InventoryError as exc:
        for problem in exc.problems:
            typer.echo(problem)
        typer.echo(f"{len(exc.problems)} problem(s) in {file}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(
        f"OK: {len(inventory.nodes)} nodes, {len(inventory.links)} links, "
        f"{len(inventory.attachments)} attachments"
    )


@inventory_app.command("generate")
def generate(
    nodes: int = typer.Option(..., "--nodes", min=10, help="Number of routers (at least 10)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same inventory."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Generate a synthetic inventory of about NODES routers, as YAML."""
    data = generator.generate_inventory(nodes, seed)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=None, width=120)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}: {len(data['nodes'])} nodes, {len(data['links'])} links, "
                   f"{len(data['attachments'])} attachments", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``inventory`` sub-group to ``app``."""
    app.add_typer(inventory_app, name="inventory")
