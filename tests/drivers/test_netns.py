"""The shared driver contract, run against the real netns data plane (root only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from s2cvpn.drivers.netns import NetnsDriver
from s2cvpn.drivers.netns.names import Names
from s2cvpn.network.inventory import Inventory
from tests.dataplane import lab
from tests.drivers.contract import DriverContract, demo_inventory

pytestmark = pytest.mark.netns
PREFIX = "s2cu"


@pytest.fixture(scope="module")
def contract_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsDriver]:
    with lab.running_lab(demo_inventory(), PREFIX, tmp_path_factory.mktemp("netns-contract")) as driver:
        yield driver


class TestNetnsDriver(DriverContract):
    @pytest.fixture
    def inventory(self, contract_lab: NetnsDriver) -> Inventory:
        return contract_lab.inventory

    @pytest.fixture
    def driver(self, contract_lab: NetnsDriver) -> Iterator[NetnsDriver]:
        yield contract_lab
        for session_id in contract_lab.list_services():
            contract_lab.remove(session_id)

    def carried_bandwidth(self, driver, session_id):  # type: ignore[no-untyped-def]
        """The rate of the tbf the session's VRF really has."""
        ns = next(ns for ns in lab.runner.list_netns() if ns.endswith(f"-{session_id}-a0"))
        out = lab.sh(ns, "tc", "qdisc", "show").stdout
        rate = out.split(" rate ", 1)[1].split()[0]
        return int(rate.rstrip("Mbit")) if rate.endswith("Mbit") else None


def test_interface_names_fit_linux() -> None:
    names = Names("s2cx")
    assert len(names.vxlan(9_999_999, 1)) <= 15
    assert len(names.ce_side(9_999_999, 1)) <= 15
    assert len(names.link_if(99_999, "a")) <= 15
    with pytest.raises(ValueError):
        Names("toolong")


def test_session_names_round_trip() -> None:
    names = Names("s2c")
    ns = names.session_ns(42, "0b1e7d3c-aaaa-4bbb-8ccc-123456789abc", "a1")
    assert names.parse_session_ns(ns) == (42, "0b1e7d3c-aaaa-4bbb-8ccc-123456789abc", "a1")
    assert names.parse_session_ns("s2c-r-pe-lisbon-1") is None


def test_apply_without_lab_is_unavailable(tmp_path: Path) -> None:
    lab.require_netns()
    from s2cvpn.errors import DriverUnavailable
    from tests.drivers.contract import spec_factory

    inventory = demo_inventory()
    driver = NetnsDriver(inventory, state_dir=tmp_path, prefix="s2cn")
    assert not driver.health().ok
    with pytest.raises(DriverUnavailable, match="lab is not up"):
        driver.apply(spec_factory(inventory))
    assert lab.leftovers("s2cn", tmp_path) == []
