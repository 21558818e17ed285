"""Real packets: a session carries traffic while applied and only then; sessions with the
same addresses stay apart; static routing, IPv6, measurements, crash recovery."""

from __future__ import annotations

import subprocess

import pytest

from s2cvpn.drivers.base import ServiceSpec
from s2cvpn.drivers.netns import NetnsDriver
from tests.dataplane.lab import pings, sh
from tests.drivers.contract import spec_factory

pytestmark = pytest.mark.netns
SERVER4, SERVER6 = "10.200.0.10", "2001:db8:c::10"


def ce_ns(driver: NetnsDriver, spec: ServiceSpec) -> str:
    return driver.names.ce(spec.primary.attachment_id)


def ns_of(driver: NetnsDriver, spec: ServiceSpec, role: str) -> str:
    return driver.names.session_ns(spec.allocation.slot, spec.session_id, role)


def test_reachable_only_while_applied(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory)
    ce = ce_ns(driver, spec)
    assert pings(ce, SERVER4, count=1) == 0
    driver.apply(spec)
    assert pings(ce, SERVER4, count=3) == 3
    driver.remove(spec.session_id)
    assert pings(ce, SERVER4, count=1) == 0
    assert spec.session_id not in driver.list_services()


def test_static_routing_installs_static_routes(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory)
    driver.apply(spec)
    vrf_routes = sh(ns_of(driver, spec, "a0"), "ip", "route", "show", "10.10.0.0/24").stdout
    assert "via" in vrf_routes and "proto bgp" not in vrf_routes
    assert pings(ce_ns(driver, spec), SERVER4, count=3) == 3


def test_ipv6_end_to_end(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory, ce="198.51.100.20")
    driver.apply(spec)
    assert pings(ce_ns(driver, spec), SERVER6, count=3) >= 2  # the first may wait for ND


def test_identical_prefixes_are_isolated(driver: NetnsDriver) -> None:
    """Two customers, same LAN prefix, same server address; B also has 10.200.0.20."""
    a = spec_factory(driver.inventory, ce="198.51.100.10")
    b = spec_factory(driver.inventory, ce="198.51.100.20", servers=("10.200.0.10/32", "10.200.0.20/32"))
    driver.apply(a)
    driver.apply(b)
    ce_a, ce_b = ce_ns(driver, a), ce_ns(driver, b)
    assert pings(ce_b, "10.200.0.20", count=2) == 2
    assert pings(ce_a, "10.200.0.20", count=2) == 0  # exists only in B's cloud
    before_a, before_b = _echo_requests(driver, a), _echo_requests(driver, b)
    assert pings(ce_a, SERVER4, count=5) == 5
    assert _echo_requests(driver, a) - before_a == 5  # A's pings reached A's cloud...
    assert _echo_requests(driver, b) == before_b  # ...not B's, whose server has the same address


def test_measure_is_real(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory)
    driver.apply(spec)
    m = driver.measure(spec.session_id)
    assert m.measured is True
    assert m.packet_loss_rate == 0.0
    assert m.latency_ms is not None and 0 < m.latency_ms < 50


def test_apply_resumes_after_a_crash_mid_build(driver: NetnsDriver) -> None:
    """A half-built session (as a kill -9 would leave it) is rebuilt by the next apply."""
    spec = spec_factory(driver.inventory)
    a0, e = ns_of(driver, spec, "a0"), ns_of(driver, spec, "e")
    subprocess.run(["ip", "netns", "add", a0], check=True)
    subprocess.run(
        ["ip", "link", "add", driver.names.pe_side(0), "netns", a0, "type", "veth", "peer", "name",
         driver.names.ce_side(spec.allocation.slot, 0), "netns", ce_ns(driver, spec)],
        check=True,
    )
    assert spec.session_id in driver.list_services()
    driver.apply(spec)
    assert pings(ce_ns(driver, spec), SERVER4, count=2) == 2
    subprocess.run(["ip", "netns", "del", e], check=True)  # a crash in the middle of remove
    driver.apply(spec)
    assert pings(ce_ns(driver, spec), SERVER4, count=2) == 2


def _echo_requests(driver: NetnsDriver, spec: ServiceSpec) -> int:
    """ICMP echo requests the session's cloud received (its own IP stack's counter)."""
    lines = [line.split() for line in sh(ns_of(driver, spec, "e"), "cat", "/proc/net/snmp").stdout.splitlines()]
    header, values = [line for line in lines if line[0] == "Icmp:"][:2]
    return int(values[header.index("InEchos")])
