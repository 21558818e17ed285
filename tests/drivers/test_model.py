"""The shared driver contract, run against ModelDriver, plus what is model-specific."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest

from s2cvpn.drivers import registry
from s2cvpn.drivers.base import NetworkDriver, ServiceSpec, call_driver
from s2cvpn.drivers.model import ModelDriver
from s2cvpn.network.inventory import Inventory
from tests.drivers.contract import DriverContract, spec_factory


class TestModelDriver(DriverContract):
    @pytest.fixture
    def driver(self, inventory: Inventory) -> ModelDriver:
        return ModelDriver(inventory)

    def carried_bandwidth(self, driver: NetworkDriver, session_id: str) -> int | None:
        assert isinstance(driver, ModelDriver)
        spec = driver.spec_of(session_id)
        return spec.bandwidth_mbps if spec else None

    def test_measure_returns_planned_values(self, driver: ModelDriver, inventory: Inventory) -> None:
        spec = spec_factory(inventory, bandwidth_mbps=25)
        driver.apply(spec)
        m = driver.measure(spec.session_id)
        assert (m.latency_ms, m.packet_loss_rate, m.throughput_mbps, m.measured) == (spec.primary.latency_ms, 0.0, 25.0, False)


def test_registry_builds_known_drivers(tmp_path: Path) -> None:
    inventory = spec_inventory()
    assert registry.create_driver("model", inventory).name == "model"
    assert registry.create_driver("netns", inventory, state_dir=tmp_path).name == "netns"


def test_registry_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="model, netns"):
        registry.create_driver("junos", spec_inventory())


@pytest.mark.parametrize("method", ["apply", "modify", "remove", "measure", "list_services", "health"])
def test_drivers_keep_the_base_signatures(method: str) -> None:
    from s2cvpn.drivers.netns import NetnsDriver

    expected = inspect.signature(getattr(NetworkDriver, method))
    for cls in (ModelDriver, NetnsDriver):
        assert inspect.signature(getattr(cls, method)) == expected, cls


def spec_inventory() -> Inventory:
    from tests.drivers.contract import demo_inventory

    return demo_inventory()


@pytest.mark.parametrize(("delay", "blocks"), [(0.0, False), (0.001, True)])
async def test_a_driver_runs_in_a_worker_thread_only_when_it_blocks(delay: float, blocks: bool) -> None:
    """The model network is memory: called on the loop (a thread hop costs more), unless it
    plays a slow network (``delay_seconds``), which blocks."""
    inventory = spec_inventory()
    driver = ModelDriver(inventory, delay_seconds=delay)
    spec = spec_factory(inventory)
    ran_on: list[int] = []
    original = driver.apply

    def apply(spec: ServiceSpec) -> None:
        ran_on.append(threading.get_ident())
        original(spec)

    driver.apply = apply  # type: ignore[method-assign]
    assert driver.blocks is blocks
    await call_driver(driver, "apply", spec)
    assert (ran_on[0] != threading.get_ident()) is blocks
    assert driver.spec_of(spec.session_id) == spec
