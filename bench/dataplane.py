"""Data-plane benchmark of the netns driver (root): how fast sessions come up, how many fit.

    sudo .venv/bin/python bench/dataplane.py [--sessions 50] [--cap 400] [--workers 8]
    sudo .venv/bin/python bench/dataplane.py --part api [--sessions 50] [--database-url URL]

Figures printed:
  * apply -> first packet through (p50/p95), 1 session at a time, then 50 applied at once
    (first packet = first answered ping CE -> application server after apply() returns;
    the figure includes one ping process start, ~3 ms);
  * sessions applied per second (sequential and concurrent);
  * how many simultaneous sessions one lab holds before the apply time doubles (searched in
    steps of 25 up to --cap).
Through the HTTP API (``--part api``, or ``all``, the default): a real ``s2cvpn serve``
process with the netns driver on the same lab, SQLite by default:
  * POST -> first packet through (p50/p95): 1 session at a time, then --sessions POSTed
    at once (first packet = first ICMP echo reply CE -> application server; one prober
    process per CE sends an echo every 10 ms to each awaited server, so the figure has
    10 ms resolution; the clock starts before the POST is sent);
  * sessions applied per second: POSTs answered per second while --sessions are sent at
    once, and sessions carrying traffic per second over the whole burst.
The lab (prefix ``s2cb``) is built at start and removed at the end, also on failure; the
server, its database folder and every session are removed too.
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from s2cvpn.config import BUNDLED_INVENTORY
from s2cvpn.drivers.base import ServiceSpec
from s2cvpn.drivers.netns import NetnsDriver
from s2cvpn.drivers.netns.names import Names
from s2cvpn.network.inventory import Inventory
from s2cvpn.network.loader import load_inventory
from s2cvpn.network.planner import plan_connection
from s2cvpn.network.plans import ConnectionRequest
from s2cvpn.network.pools import allocation_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support
from tests.support.servers import ServerProcess, free_port, register_client  # noqa: E402

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
    parser.add_argument("--part", choices=("driver", "api", "all"), default="all", help="what to measure (default all)")
    parser.add_argument("--database-url", default="", help="API part: the server's database (default: SQLite in a temp folder)")
    args = parser.parse_args()
    inventory = load_inventory(BUNDLED_INVENTORY)
    driver = NetnsDriver(inventory, prefix=PREFIX)
    started = time.monotonic()
    driver.lab_up()
    print(f"lab up: {len(inventory.nodes)} routers, {len(inventory.links)} links, "
          f"{len(inventory.attachments)} CEs in {ms(time.monotonic() - started)}")
    try:
        if args.part in ("driver", "all"):
            run(driver, inventory, args)
        if args.part in ("api", "all"):
            run_api(driver, inventory, args)
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
        if held:
            probe = spec_for(inventory, 2000)
            first_packet(driver, probe, time.monotonic())
            print(f"  with {held} sessions up, session {probe.session_id} still carries traffic")
    finally:
        t0 = time.monotonic()
        for session_id in driver.list_services():
            driver.remove(session_id)
        print(f"  removed {held} sessions in {time.monotonic() - t0:.1f} s")


# ---------------------------------------------------------------------------------------
# Through the HTTP API: a real server with the netns driver on the same lab
API_ROOT = "/site-to-cloud-vpn/v0.1"


@contextmanager
def netns_server(database_url: str) -> Iterator[httpx.Client]:
    """A real ``s2cvpn serve`` with the netns driver on lab ``PREFIX``, and a client's API."""
    folder = Path(tempfile.mkdtemp(prefix="s2cvpn-bench-"))
    url = database_url or f"sqlite:///{folder / 's2cvpn.db'}"
    env = {"S2CVPN_DRIVER": "netns", "S2CVPN_NETNS_PREFIX": PREFIX, "S2CVPN_RETENTION_SECONDS": "5"}
    server = ServerProcess(database_url=url, port=free_port(), workdir=folder, env=env)
    try:
        server.start()
        token = server.token(*register_client(url, "bench"))
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url + API_ROOT, headers=headers, timeout=60, limits=limits) as api:
            yield api
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def api_body(inventory: Inventory, n: int) -> tuple[dict[str, Any], str, str]:
    """(request body, CE namespace, server address) of API session number ``n``."""
    attachments = [a for a in inventory.attachments.values() if a.customers is None and any(x.version == 4 for x in a.ce_addresses)]
    attachment = attachments[n % len(attachments)]
    ce = next(x for x in attachment.ce_addresses if x.version == 4)
    server = f"10.{100 + n // 65536}.{(n // 256) % 256}.{n % 256}"
    body = {
        "customerEdge": {"type": "site", "primaryIpAddress": {"ipv4Address": str(ce)}, "prefixes": [f"172.{16 + n // 256 % 16}.{n % 256}.0/24"]},
        "providerEdge": {"type": "cloud", "primaryIpAddress": {"ipv4Address": CLOUD_PES[n % len(CLOUD_PES)]}},
        "applicationServers": [{"ipv4Address": f"{server}/32"}],
        "sla": "A",
        "guaranteeBandwidth": 10,
    }
    return body, Names(PREFIX).ce(attachment.id), server


PROBER = r"""
import os, select, socket, struct, sys, threading, time
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident, pending, lock = os.getpid() & 0xFFFF, set(), threading.Lock()
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
def watch():
    for line in sys.stdin:
        with lock:
            pending.add(line.strip())
threading.Thread(target=watch, daemon=True).start()
print("ready", flush=True)
seq = 0
while True:
    seq = (seq + 1) & 0xFFFF
    with lock:
        targets = list(pending)
    for target in targets:
        head = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"s2cvpn-bench...."
        packet = head[:2] + struct.pack("!H", checksum(head)) + head[4:]
        try:
            sock.sendto(packet, (target, 0))
        except OSError:
            pass  # no route yet
    deadline = time.monotonic() + 0.01
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        data, (source, _port) = sock.recvfrom(2048)
        ihl = (data[0] & 0x0F) * 4
        kind, _code, _sum, pid, _seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
        if kind == 0 and pid == ident:
            with lock:
                if source in pending:
                    pending.discard(source)
                    print(source, time.monotonic(), flush=True)
"""


class Prober:
    """One ICMP prober process per CE namespace: echo requests every 10 ms to each watched
    server until the first reply, reported with its CLOCK_MONOTONIC time (shared by all
    processes), so probing costs no process start per attempt and does not load the CPU
    the service needs."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.replies: dict[str, float] = {}
        self.cond = threading.Condition()

    def watch(self, ce_ns: str, server: str) -> None:
        with self.cond:
            proc = self.procs.get(ce_ns)
            if proc is None:
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", ce_ns, sys.executable, "-c", PROBER],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
                threading.Thread(target=self._read, args=(proc,), daemon=True).start()
                self.procs[ce_ns] = proc
            self.replies.pop(server, None)
            assert proc.stdin is not None
            proc.stdin.write(server + "\n")
            proc.stdin.flush()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server, at = line.split()
            with self.cond:
                self.replies[server] = float(at)
                self.cond.notify_all()

    def first_reply(self, server: str, timeout_s: float = 60.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: server in self.replies, timeout=timeout_s):
                raise RuntimeError(f"no packet through to {server} after {timeout_s} s")
            return self.replies[server]

    def close(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


def post_then_probe(api: httpx.Client, inventory: Inventory, prober: Prober, n: int, posted: list[float]) -> tuple[str, float]:
    body, ce_ns, server = api_body(inventory, n)
    prober.watch(ce_ns, server)
    started = time.monotonic()
    response = api.post("/sessions", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST {n}: {response.status_code} {response.text}")
    posted.append(time.monotonic())
    return response.json()["sessionId"], prober.first_reply(server) - started


def delete_all(api: httpx.Client, session_ids: list[str]) -> float:
    t0 = time.monotonic()
    for session_id in session_ids:
        api.delete(f"/sessions/{session_id}")
    for session_id in session_ids:
        deadline = time.monotonic() + 60
        while api.get(f"/sessions/{session_id}").status_code != 404:
            if time.monotonic() > deadline:
                raise RuntimeError(f"session {session_id} not gone after 60 s")
            time.sleep(0.05)
    return time.monotonic() - t0


def run_api(driver: NetnsDriver, inventory: Inventory, args: argparse.Namespace) -> None:
    db = args.database_url or "SQLite"
    print(f"\nthrough the HTTP API (s2cvpn serve, netns driver, {db.split('@')[-1]})")
    prober = Prober()
    try:
        with netns_server(args.database_url) as api:
            # 1 session at a time
            through, ids = [], []
            for n in range(args.single):
                session_id, t = post_then_probe(api, inventory, prober, n, [])
                through.append(t)
                ids.append(session_id)
                delete_all(api, [session_id])
            print(f"  1 session at a time ({args.single} samples)")
            print(f"    POST -> first packet  p50 {ms(pct(through, 0.5))}   p95 {ms(pct(through, 0.95))}")

            # N POSTed at once
            posted: list[float] = []
            start = threading.Barrier(args.sessions + 1)

            def one(n: int) -> tuple[str, float]:
                start.wait()
                return post_then_probe(api, inventory, prober, 10_000 + n, posted)

            with ThreadPoolExecutor(args.sessions) as pool:
                futures = [pool.submit(one, n) for n in range(args.sessions)]
                start.wait()
                t0 = time.monotonic()
                results = [f.result() for f in futures]
            wall = time.monotonic() - t0
            through = [t for _sid, t in results]
            post_wall = max(posted) - t0
            print(f"  {args.sessions} sessions POSTed at once")
            print(f"    POST -> first packet  p50 {ms(pct(through, 0.5))}   p95 {ms(pct(through, 0.95))}")
            print(f"    POSTs answered        {args.sessions / post_wall:6.1f} /s ({args.sessions} in {post_wall:.2f} s)")
            print(f"    carrying traffic      {args.sessions / wall:6.1f} sessions/s (all {args.sessions} in {wall:.2f} s)")
            gone = delete_all(api, [sid for sid, _t in results])
            print(f"    deleted (202 -> 404)  all in {gone:.2f} s; left in the network: {len(driver.list_services())}")
    finally:
        prober.close()


if __name__ == "__main__":
    sys.exit(main())
