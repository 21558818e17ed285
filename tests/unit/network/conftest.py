"""Fixtures shared by the network tests."""

from __future__ import annotations

from typing import Any

import pytest

from s2cvpn.network import loader
from s2cvpn.network.inventory import Inventory
from tests.unit.network import support


@pytest.fixture(scope="session")
def demo() -> Inventory:
    """The bundled demo inventory, loaded once (it is immutable)."""
    return loader.load_inventory(support.DEMO_PATH)


@pytest.fixture()
def demo_mapping() -> dict[str, Any]:
    """A fresh, mutable copy of the demo inventory's YAML mapping."""
    return support.demo_mapping()
