"""BGP between CE and PE (FRR in both namespaces) carries the CE prefixes, v4 and v6."""

from __future__ import annotations

import subprocess
import time

import pytest

from s2cvpn.drivers.netns import NetnsDriver
from tests.dataplane.lab import pings, sh, wait_pings
from tests.drivers.contract import spec_factory

pytestmark = pytest.mark.netns


def test_bgp_carries_the_ce_prefixes(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory, route_protocol="BGP", customer_asn=65010)
    driver.apply(spec)
    ce = driver.names.ce(spec.primary.attachment_id)
    a0 = driver.names.session_ns(spec.allocation.slot, spec.session_id, "a0")
    assert wait_pings(ce, "10.200.0.10", seconds=15), sh(a0, "ip", "route").stdout
    assert "proto bgp" in sh(a0, "ip", "route", "show", "10.10.0.0/24").stdout
    assert "proto bgp" in sh(a0, "ip", "-6", "route", "show", "2001:db8:a::/64").stdout
    assert "proto bgp" in sh(ce, "ip", "route", "show", "10.200.0.10").stdout  # the PE's servers
    assert wait_pings(ce, "2001:db8:c::10", seconds=10)
    instance_dir = str(driver.run_dir / spec.session_id)
    assert instance_dir in subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    driver.remove(spec.session_id)
    time.sleep(0.2)
    assert pings(ce, "10.200.0.10", count=1) == 0
    assert "proto bgp" not in sh(ce, "ip", "route").stdout
    assert not list(driver.run_dir.glob(f"{spec.session_id}.*"))
    assert instance_dir not in subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
