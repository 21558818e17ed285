"""``inventory check`` and ``inventory generate``, through a throwaway Typer app."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from s2cvpn.network import cli, loader
from tests.unit.network.support import DEMO_PATH


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Root."""

    cli.register(app)
    return app


def test_check_ok() -> None:
    result = CliRunner().invoke(_app(), ["inventory", "check", str(DEMO_PATH)])
    assert result.exit_code == 0
    assert result.output.strip() == "OK: 19 nodes, 29 links, 12 attachments"


def test_check_lists_problems_and_fails() -> None:
    readme = Path(__file__).resolve().parents[3] / "README.md"
    result = CliRunner().invoke(_app(), ["inventory", "check", str(readme)])
    assert result.exit_code == 1
    assert "not valid YAML" in result.output


def test_generate_prints_a_loadable_inventory() -> None:
    result = CliRunner().invoke(_app(), ["inventory", "generate", "--nodes", "40", "--seed", "3"])
    assert result.exit_code == 0
    inventory = loader.inventory_from_mapping(yaml.safe_load(result.stdout))
    assert len(inventory.nodes) == 40


def test_generate_rejects_tiny_sizes() -> None:
    result = CliRunner().invoke(_app(), ["inventory", "generate", "--nodes", "3"])
    assert result.exit_code != 0
