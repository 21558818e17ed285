"""``DriverContract``: what every NetworkDriver must do, run once per driver.

A driver's test module subclasses it and overrides the ``driver`` fixture (and, for a
backend with a lab, the ``inventory`` fixture). Specs come from ``spec_factory``, which
plans real sessions on the bundled demo inventory with the project's own planner and
pools, so every driver is tested on what the service will really send it.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import replace
from datetime import date

import pytest

from s2cvpn.config import BUNDLED_INVENTORY
from s2cvpn.drivers.base import FlowSpec, Health, Measurement, NetworkDriver, ServiceSpec
from s2cvpn.network.inventory import Inventory
from s2cvpn.network.loader import load_inventory
from s2cvpn.network.planner import plan_connection
from s2cvpn.network.plans import ConnectionRequest
from s2cvpn.network.pools import allocation_for

PLAN_DAY = date(2026, 12, 1)
_slots = itertools.count(1)


def demo_inventory() -> Inventory:
    return load_inventory(BUNDLED_INVENTORY)


def spec_factory(
    inventory: Inventory,
    *,
    session_id: str | None = None,
    slot: int | None = None,
    ce: str = "198.51.100.10",
    pe: str = "203.0.113.1",
    bandwidth_mbps: int = 10,
    protected: bool = False,
    ce_prefixes: tuple[str, ...] = ("10.10.0.0/24", "2001:db8:a::/64"),
    servers: tuple[str, ...] = ("10.200.0.10/32", "2001:db8:c::10/128"),
    flows: tuple[FlowSpec, ...] = (),
    route_protocol: str = "static",
    customer_asn: int | None = None,
    sla: str = "A",
) -> ServiceSpec:
    """A valid, planned ServiceSpec on ``inventory`` (default: a Lisbon CE to azurite)."""
    slot = next(_slots) if slot is None else slot
    request = ConnectionRequest(
        client_id="contract-client",
        ce_primary=(ipaddress.ip_address(ce),),
        pe_primary=(ipaddress.ip_address(pe),),
        bandwidth_mbps=bandwidth_mbps,
        sla=sla,
        protected=protected,
    )
    plan = plan_connection(inventory, request, {}, PLAN_DAY)
    paths = 2 if plan.secondary else 1
    return ServiceSpec(
        session_id=session_id or f"c0ffee00-0000-4000-8000-{slot:012d}",
        client_id=request.client_id,
        bandwidth_mbps=bandwidth_mbps,
        sla=sla,
        primary=plan.primary,
        secondary=plan.secondary,
        allocation=allocation_for(inventory, slot, paths),
        ce_addresses=(ce,),
        ce_prefixes=tuple(ipaddress.ip_network(p) for p in ce_prefixes),
        application_servers=tuple(ipaddress.ip_network(s) for s in servers),
        flows=flows,
        route_protocol=route_protocol,  # type: ignore[arg-type]
        customer_asn=customer_asn if customer_asn is not None else (65010 if route_protocol == "BGP" else None),
    )


class DriverContract:
    """The shared suite. Subclasses override ``driver`` (yield a ready driver, clean up)."""

    @pytest.fixture
    def inventory(self) -> Inventory:
        return demo_inventory()

    @pytest.fixture
    def driver(self, inventory: Inventory) -> NetworkDriver:  # pragma: no cover - overridden
        raise NotImplementedError("override the driver fixture")

    @pytest.fixture
    def spec(self, inventory: Inventory) -> ServiceSpec:
        return spec_factory(inventory)

    def test_has_a_name(self, driver: NetworkDriver) -> None:
        assert isinstance(driver.name, str) and driver.name

    def test_health_ok(self, driver: NetworkDriver) -> None:
        health = driver.health()
        assert isinstance(health, Health)
        assert health.ok, health.detail

    def test_starts_empty(self, driver: NetworkDriver) -> None:
        assert driver.list_services() == set()

    def test_apply_then_list(self, driver: NetworkDriver, spec: ServiceSpec) -> None:
        driver.apply(spec)
        assert spec.session_id in driver.list_services()

    def test_apply_is_idempotent(self, driver: NetworkDriver, spec: ServiceSpec) -> None:
        driver.apply(spec)
        driver.apply(spec)
        assert driver.list_services() == {spec.session_id}

    def test_remove_then_list(self, driver: NetworkDriver, spec: ServiceSpec) -> None:
        driver.apply(spec)
        driver.remove(spec.session_id)
        assert spec.session_id not in driver.list_services()

    def test_remove_unknown_is_fine(self, driver: NetworkDriver) -> None:
        driver.remove("00000000-0000-4000-8000-000000000000")
        assert driver.list_services() == set()

    def test_remove_is_idempotent(self, driver: NetworkDriver, spec: ServiceSpec) -> None:
        driver.apply(spec)
        driver.remove(spec.session_id)
        driver.remove(spec.session_id)
        assert driver.list_services() == set()

    def test_two_sessions_listed_independently(self, driver: NetworkDriver, inventory: Inventory) -> None:
        first, second = spec_factory(inventory), spec_factory(inventory, ce="198.51.100.20")
        driver.apply(first)
        driver.apply(second)
        assert driver.list_services() == {first.session_id, second.session_id}
        driver.remove(first.session_id)
        assert driver.list_services() == {second.session_id}

    def test_modify_changes_bandwidth(self, driver: NetworkDriver, spec: ServiceSpec) -> None:
        driver.apply(spec)
        bigger = replace(spec, bandwidth_mbps=spec.bandwidth_mbps * 2)
        driver.modify(bigger)
        assert driver.list_services() == {spec.session_id}
        assert self.carried_bandwidth(driver, spec.session_id) in (None, bigger.bandwidth_mbps)

    def test_measure_applied_session(self, driver: NetworkDriver, spec: ServiceSpec) -> None:
        driver.apply(spec)
        measurement = driver.measure(spec.session_id)
        assert isinstance(measurement, Measurement)
        assert measurement.latency_ms is not None and measurement.latency_ms >= 0
        assert measurement.packet_loss_rate is not None and 0 <= measurement.packet_loss_rate <= 100
        assert measurement.throughput_mbps is not None and measurement.throughput_mbps >= 0

    def test_removing_everything_leaves_nothing(self, driver: NetworkDriver, inventory: Inventory) -> None:
        specs = [spec_factory(inventory), spec_factory(inventory, protected=True), spec_factory(inventory, ce="198.51.100.30")]
        for spec in specs:
            driver.apply(spec)
        for spec in specs:
            driver.remove(spec.session_id)
        assert driver.list_services() == set()

    def carried_bandwidth(self, driver: NetworkDriver, session_id: str) -> int | None:
        """Hook: the bandwidth the backend really enforces for a session (None: unknown)."""
        return None
