"""A protected session survives the loss of a primary-path link within about a second."""

from __future__ import annotations

import subprocess
import time

import pytest

from s2cvpn.drivers.netns import NetnsDriver
from s2cvpn.drivers.netns import topology
from tests.dataplane.lab import pings
from tests.drivers.contract import spec_factory

pytestmark = pytest.mark.netns
INTERVAL_S = 0.01


def test_protected_session_survives_a_primary_link_failure(driver: NetnsDriver) -> None:
    spec = spec_factory(driver.inventory, protected=True)
    assert spec.secondary is not None
    driver.apply(spec)
    ce = driver.names.ce(spec.primary.attachment_id)
    assert pings(ce, "10.200.0.10", count=3) == 3
    link = topology.lab_links(driver.inventory)[spec.primary.links[1]]  # a backbone link, mid-path
    router, dev = driver.names.router(link.a), driver.names.link_if(link.index, "a")
    probe = subprocess.Popen(
        ["ip", "netns", "exec", ce, "ping", "-n", "-q", "-i", str(INTERVAL_S), "-w", "4", "10.200.0.10"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        subprocess.run(["ip", "-n", router, "link", "set", dev, "down"], check=True)
        out, _ = probe.communicate(timeout=10)
    finally:
        subprocess.run(["ip", "-n", router, "link", "set", dev, "up"], check=True)
    line = next(line for line in out.splitlines() if "received" in line)
    sent, received = int(line.split()[0]), int(line.split(",")[1].split()[0])
    lost_s = (sent - received) * INTERVAL_S
    print(f"failover: lost {sent - received} of {sent} pings at {INTERVAL_S * 1000:.0f} ms = {lost_s:.2f} s")
    assert received > 0.5 * sent, out
    assert lost_s <= 1.0, f"lost {sent - received} of {sent} pings ({lost_s:.2f} s): {out}"
