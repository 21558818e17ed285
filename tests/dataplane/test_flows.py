"""applicationFlows: only the listed flows pass (TCP 443 here), others are dropped."""

from __future__ import annotations

from dataclasses import replace

import pytest

from s2cvpn.drivers.base import FlowSpec
from s2cvpn.drivers.netns import NetnsDriver
from tests.dataplane.lab import pings
from tests.dataplane.traffic import Listeners, reach
from tests.drivers.contract import spec_factory

pytestmark = pytest.mark.netns
SERVER = "10.200.0.10"


def test_only_listed_flows_pass(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory, flows=(FlowSpec("TCP", server_ports=((443, 443),)),))
    driver.apply(spec)
    ce = driver.names.ce(spec.primary.attachment_id)
    vpc = driver.names.session_ns(spec.allocation.slot, spec.session_id, "e")
    with Listeners(vpc, SERVER, ["tcp:443", "tcp:22", "udp:53", "udp:443"]):
        assert reach(ce, "tcp", SERVER, 443)
        assert not reach(ce, "tcp", SERVER, 22)
        assert not reach(ce, "udp", SERVER, 53)
        assert not reach(ce, "udp", SERVER, 443)
        assert pings(ce, SERVER, count=2) == 2  # ICMP echo stays open for probes
        driver.modify(replace(spec, flows=()))  # no flows listed: everything passes
        assert reach(ce, "tcp", SERVER, 22)
        assert reach(ce, "udp", SERVER, 53)
