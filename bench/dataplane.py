"""Data-plane benchmark of the netns driver (root): how fast sessions come up, how many fit.

    sudo .venv/bin/python bench/dataplane.py [--sessions 50] [--cap 400] [--workers 8]

Figures printed:
  * apply -> first packet through (p50/p95), 1 session at a time, then 50 applied at once
    (first packet = first answered ping CE -> application server after apply() returns;
    the figure includes one ping process start, ~3 ms);
  * sessions applied per second (sequential and concurrent);
  * how many simultaneous sessions one lab holds before the apply time doubles (searched in
    steps of 25 up to --cap).
The lab (prefix ``s2cb``) is built at start and removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from s2cvpn.config import BUNDLED_INVENTORY
from s2cvpn.drivers.base import ServiceSpec
from s2cvpn.drivers.netns import NetnsDriver
from s2cvpn.network.inventory import Inventory
from s2cvpn.network.loader import load_inventory
from s2cvpn.network.planner import plan_connection
from s2cvpn.network.plans import ConnectionRequest
from s2cvpn.network.pools import allocation_for

PREFIX = "s2cb"
CLOUD_PES = ("203.0.113.1", "203.0.113.2", "203.0.113.9")


def spec_for(inventory: Inventory, slot: int) -> ServiceSpec:
    """Session ``slot``: CEs and cloud PEs in turn, a LAN and a server unique to the slot."""
    attachments = [a for a in inventory.attachments.values() if a.customers is None and any(x.version == 4 for x in a.ce_addresses)]
    attachment = attachments[slot % len(attachments)]
    ce = next(x for x in attachment.ce_addresses if x.version == 4)
    request = ConnectionRequest(
        client_id="bench",
        ce_primary=(ce,),
        pe_primary=(ipaddress.ip_address(CLOUD_PES[slot % len(CLOUD_PES)]),),
        bandwidth_mbps=10,
        sla="A",
    )
    plan = plan_connection(inventory, request, {}, date(2026, 12, 1))
    return ServiceSpec(
        session_id=f"bench-{slot:05d}",
        client_id="bench",
        bandwidth_mbps=10,
        sla="A",
        primary=plan.primary,
        secondary=None,
        allocation=allocation_for(inventory, slot, 1),
        ce_addresses=(str(ce),),
        ce_prefixes=(ipaddress.ip_network(f"172.{16 + slot // 256}.{slot % 256}.0/24"),),
        application_servers=(ipaddress.ip_network(f"10.{slot // 256}.{slot % 256}.10/32"),),
    )


def first_packet(driver: NetnsDriver, spec: ServiceSpec, started: float, timeout_s: float = 5.0) -> float:
    """Seconds from ``started`` to the first answered ping CE -> server."""
    ce = driver.names.ce(spec.primary.attachment_id)
    server = str(spec.application_servers[0].network_address)
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        probe = subprocess.run(["ip", "netns", "exec", ce, "ping", "-n", "-q", "-c", "1", "-W", "0.2", server], capture_output=True)
        if probe.returncode == 0:
            return time.monotonic() - started
    raise RuntimeError(f"{spec.session_id}: no packet through after {timeout_s} s")


def apply_and_probe(driver: NetnsDriver, spec: ServiceSpec) -> tuple[float, float]:
    started = time.monotonic()
    driver.apply(spec)
    applied = time.monotonic() - started
    return applied, first_packet(driver, spec, started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{value * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default 50)")
    parser.add_argument("--cap", type=int, default=400, help="capacity search limit (default 400)")
    parser.add_argument("--workers", type=int, default=8, help="threads applying concurrently")
    parser.add_argument("--single", type=int, default=20, help="sequential samples (default 20)")
    args = parser.parse_args()
    inventory = load_inventory(BUNDLED_INVENTORY)
    driver = NetnsDriver(inventory, prefix=PREFIX)
    started = time.monotonic()
    driver.lab_up()
    print(f"lab up: {len(inventory.nodes)} routers, {len(inventory.links)} links, "
          f"{len(inventory.attachments)} CEs in {ms(time.monotonic() - started)}")
    try:
        run(driver, inventory, args)
    finally:
        driver.lab_down()


def run(driver: NetnsDriver, inventory: Inventory, args: argparse.Namespace) -> None:
    # 1 session at a time
    applied, through, removed = [], [], []
    for slot in range(args.single):
        spec = spec_for(inventory, slot)
        a, t = apply_and_probe(driver, spec)
        applied.append(a)
        through.append(t)
        t0 = time.monotonic()
        driver.remove(spec.session_id)
        removed.append(time.monotonic() - t0)
    print(f"\n1 session at a time ({args.single} samples)")
    print(f"  apply() returns         p50 {ms(pct(applied, 0.5))}   p95 {ms(pct(applied, 0.95))}")
    print(f"  apply -> first packet   p50 {ms(pct(through, 0.5))}   p95 {ms(pct(through, 0.95))}")
    print(f"  remove()                p50 {ms(pct(removed, 0.5))}   p95 {ms(pct(removed, 0.95))}")
    print(f"  sequential rate         {1 / statistics.mean(applied):6.1f} sessions/s")

    # N at once
    specs = [spec_for(inventory, 1000 + i) for i in range(args.sessions)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda s: apply_and_probe(driver, s), specs))
    wall = time.monotonic() - t0
    through = [t for _a, t in results]
    print(f"\n{args.sessions} sessions applied at once ({args.workers} threads)")
    print(f"  apply -> first packet   p50 {ms(pct(through, 0.5))}   p95 {ms(pct(through, 0.95))}")
    print(f"  all carrying traffic in {wall:.2f} s: {args.sessions / wall:.1f} sessions/s")
    t0 = time.monotonic()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(lambda s: driver.remove(s.session_id), specs))
    print(f"  removed in {time.monotonic() - t0:.2f} s; left: {len(driver.list_services())}")

    # capacity: add sessions in steps until the apply time doubles
    step, held, baseline = 25, 0, None
    print(f"\ncapacity search (steps of {step}, cap {args.cap})")
    try:
        while held < args.cap:
            batch = [spec_for(inventory, 2000 + held + i) for i in range(step)]
            times = []
            for spec in batch:
                t0 = time.monotonic()
                driver.apply(spec)
                times.append(time.monotonic() - t0)
            held += step
            median = statistics.median(times)
            baseline = baseline or median
            print(f"  {held:4d} sessions held: median apply {ms(median)} ({median / baseline:.2f}x)")
            if median >= 2 * baseline:
                print(f"  apply time doubled at about {held} simultaneous sessions")
                break
        else:
            print(f"  apply time had not doubled at the cap ({args.cap} sessions)")
        probe = spec_for(inventory, 2000)
        first_packet(driver, probe, time.monotonic())
        print(f"  with {held} sessions up, session {probe.session_id} still carries traffic")
    finally:
        t0 = time.monotonic()
        for session_id in driver.list_services():
            driver.remove(session_id)
        print(f"  removed {held} sessions in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
