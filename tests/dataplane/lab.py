"""Helpers for tests that drive real packets through a netns lab.

Every lab a test builds carries its own name prefix, and ``teardown`` removes everything
with that prefix and then asserts that nothing is left: no namespace, no root-namespace
link, no daemon or probe process started for the lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from s2cvpn.drivers.netns import NetnsDriver
from s2cvpn.drivers.netns import runner
from s2cvpn.network.inventory import Inventory

TOOLS = ("ip", "tc", "nft", "ping", "iperf3", "/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "vtysh")


def netns_reason() -> str | None:
    """Why the data-plane tests cannot run here, or None."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "data-plane tests need root (network namespaces)"
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        return f"missing {', '.join(missing)}: run scripts/install-system-packages.sh"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode:
        return f"`ip netns` is unavailable: {probe.stderr.strip()}"
    return None


def require_netns() -> None:
    """Skip when the lab cannot run; on CI (root, same machine kind) fail instead."""
    reason = netns_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI must run the data-plane tests: {reason}")
    if reason:
        pytest.skip(reason)


def start_lab(inventory: Inventory, prefix: str, state_dir: Path) -> NetnsDriver:
    driver = NetnsDriver(inventory, state_dir=state_dir, prefix=prefix)
    driver.lab_down()
    driver.lab_up()
    return driver


@contextmanager
def running_lab(inventory: Inventory, prefix: str, state_dir: Path) -> Iterator[NetnsDriver]:
    """A lab for a fixture: skipped (failed on CI) where it cannot run, torn down and
    checked for leftovers afterwards, whatever the tests did."""
    require_netns()
    driver = start_lab(inventory, prefix, state_dir)
    try:
        yield driver
    finally:
        teardown(driver)


def leftovers(prefix: str, state_dir: Path) -> list[str]:
    found = [f"netns {ns}" for ns in runner.list_netns() if ns.startswith(f"{prefix}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f": {prefix}" in line]
    procs = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    marks = (str(state_dir), f"/run/{prefix}/")
    found += [f"process {line.strip()}" for line in procs.splitlines() if any(m in line for m in marks)]
    if os.path.exists(f"/run/{prefix}"):
        found.append(f"directory /run/{prefix}")
    return found


def teardown(driver: NetnsDriver) -> None:
    """Remove the whole lab by prefix, then assert nothing of it is left."""
    driver.lab_down()
    deadline = time.monotonic() + 5
    left = leftovers(driver.names.prefix, driver.state_dir)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = leftovers(driver.names.prefix, driver.state_dir)
    assert not left, f"the lab left objects behind: {left}"


def sh(ns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)


def pings(ns: str, target: str, *, count: int = 3, interval: float = 0.05, source: str | None = None) -> int:
    """How many of ``count`` pings from ``ns`` to ``target`` were answered."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1"]
    if source:
        argv += ["-I", source]
    result = sh(ns, *argv, target)
    for line in result.stdout.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    return 0


def wait_pings(ns: str, target: str, *, seconds: float, source: str | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pings(ns, target, count=1, source=source) == 1:
            return True
        time.sleep(0.1)
    return False
