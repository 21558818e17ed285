"""Guaranteed bandwidth is enforced with tc, and modify retunes it in place."""

from __future__ import annotations

from dataclasses import replace

import pytest

from s2cvpn.drivers.netns import NetnsDriver
from tests.dataplane.lab import sh
from tests.dataplane.traffic import iperf3_mbps
from tests.drivers.contract import spec_factory

pytestmark = pytest.mark.netns


def test_bandwidth_is_enforced_and_modify_changes_it(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory, bandwidth_mbps=10)
    driver.apply(spec)
    ce = driver.names.ce(spec.primary.attachment_id)
    vpc = driver.names.session_ns(spec.allocation.slot, spec.session_id, "e")
    a0 = driver.names.session_ns(spec.allocation.slot, spec.session_id, "a0")
    measured = {}
    for mbps in (10, 50, 100):
        if mbps != spec.bandwidth_mbps:
            ifindex_before = sh(a0, "cat", f"/sys/class/net/{driver.names.pe_side(0)}/ifindex").stdout
            driver.modify(replace(spec, bandwidth_mbps=mbps))
            # in place: same devices (no rebuild), the qdisc was changed, not recreated
            assert sh(a0, "cat", f"/sys/class/net/{driver.names.pe_side(0)}/ifindex").stdout == ifindex_before
        measured[mbps] = iperf3_mbps(ce, vpc, "10.200.0.10")
    print(f"iperf3 through the VPN (Mbit/s, planned -> measured): {measured}")
    for mbps, got in measured.items():
        assert abs(got - mbps) <= 0.15 * mbps, measured
