"""End to end through the HTTP API with the netns driver: a real ``s2cvpn serve`` process
(``S2CVPN_DRIVER=netns``) on a lab of its own (prefix ``s2cs``, passed to the service as
``S2CVPN_NETNS_PREFIX``), real packets from the emulated CE routers.

* a CE reaches its application servers only while its session is AVAILABLE: not before
  the POST, yes once AVAILABLE, not after DELETE, not after expiry;
* two clients with identical CE prefixes and server addresses stay apart;
* PATCH guaranteeBandwidth retunes the shaper (iperf3 within 15 %);
* the ``actual*`` fields carry real measurements (latency, loss) and stay frozen at the end.

The module's lab is removed at the end, and ``lab.teardown`` asserts that no namespace,
link or process of it is left (the session namespaces carry every qdisc and nft table).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s2cvpn.drivers.netns import NetnsDriver, runner
from tests.dataplane import lab
from tests.dataplane.traffic import iperf3_mbps
from tests.drivers.contract import demo_inventory
from tests.support.payloads import LISBON_CE, PORTO_CE, session_request
from tests.support.servers import ApiClient, ServerProcess, free_port

pytestmark = pytest.mark.netns
PREFIX = "s2cs"
PLANNED_LATENCY_MS = 4.6  # the planner's one-way latency Lisbon -> azurite (cloud-mad-1)
TOKEN_PORT = 7070


# ---------------------------------------------------------------------------------------
# helpers (also used by test_service_recovery.py)
def netns_env(prefix: str, **extra: str) -> dict[str, str]:
    """Environment of a service process that drives the lab ``prefix``."""
    return {"S2CVPN_DRIVER": "netns", "S2CVPN_NETNS_PREFIX": prefix, **extra}


def start_lab(prefix: str) -> NetnsDriver:
    """A lab whose state directory is the driver's default, the one the service uses."""
    lab.require_netns()
    return lab.start_lab(demo_inventory(), prefix, Path(f"/run/{prefix}"))


def ce_ns(driver: NetnsDriver, ce_address: str) -> str:
    import ipaddress

    wanted = ipaddress.ip_address(ce_address)
    for att_id, att in driver.inventory.attachments.items():
        if wanted in att.ce_addresses:
            return driver.names.ce(att_id)
    raise AssertionError(f"no attachment has CE {ce_address}")


def session_nss(driver: NetnsDriver, session_id: str) -> dict[str, str]:
    """role -> namespace of a session, as the lab holds it."""
    out = {}
    for ns in runner.list_netns():
        parsed = driver.names.parse_session_ns(ns)
        if parsed and parsed[1] == session_id:
            out[parsed[2]] = ns
    return out


def server_of(body: dict[str, Any]) -> str:
    return str(body["applicationServers"][0]["ipv4Address"]).split("/")[0]


def wait_for(predicate, seconds: float, what: str, step: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(step)


def create(api: ApiClient, body: dict[str, Any]) -> str:
    response = api.post("/sessions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["sessionId"])


def db_live_sessions(database_url: str) -> dict[str, str]:
    """session id -> status of every session the database holds that is not released."""
    from sqlalchemy import select

    from s2cvpn.storage.db import create_engine
    from s2cvpn.storage.tables import SessionRow

    async def run() -> dict[str, str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(select(SessionRow.session_id, SessionRow.status).where(SessionRow.released_at.is_(None)))
                return {sid: status for sid, status in rows.all()}
        finally:
            await engine.dispose()

    return asyncio.run(run())


TOKEN_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[3].encode()); c.close()
"""
TOKEN_CLIENT = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1); print(s.recv(64).decode())
except OSError as exc:
    print("fail", exc)
"""


class TokenServer:
    """A TCP server in namespace ``ns`` that answers every connection with ``token``."""

    def __init__(self, ns: str, addr: str, token: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", TOKEN_SERVER, addr, str(TOKEN_PORT), token],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def __enter__(self) -> TokenServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def fetch_token(ns: str, addr: str) -> str:
    return lab.sh(ns, sys.executable, "-c", TOKEN_CLIENT, addr, str(TOKEN_PORT)).stdout.strip()


# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service_lab() -> Iterator[NetnsDriver]:
    driver = start_lab(PREFIX)
    try:
        yield driver
    finally:
        lab.teardown(driver)


@pytest.fixture(scope="module")
def netns_server(service_lab: NetnsDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One service on SQLite driving the module's lab; measurements every 0.5 s."""
    workdir = tmp_path_factory.mktemp("netns-server")
    env = netns_env(PREFIX, S2CVPN_MEASURE_INTERVAL_SECONDS="0.5")
    with ServerProcess(database_url=f"sqlite:///{workdir / 's2cvpn.db'}", port=free_port(), workdir=workdir, env=env) as running:
        yield running


@pytest.fixture
def api(netns_server: ServerProcess) -> Iterator[ApiClient]:
    with netns_server.api_client(name=f"dp-{uuid.uuid4().hex[:8]}") as client:
        yield client
        client.delete_all_sessions()


@pytest.fixture
def other_api(netns_server: ServerProcess) -> Iterator[ApiClient]:
    with netns_server.api_client(name=f"dp-other-{uuid.uuid4().hex[:8]}") as client:
        yield client
        client.delete_all_sessions()


# ---------------------------------------------------------------------------------------
def test_traffic_flows_only_while_available_and_actuals_are_measured(service_lab: NetnsDriver, api: ApiClient) -> None:
    body = session_request(ce=LISBON_CE)
    ce, server = ce_ns(service_lab, LISBON_CE), server_of(body)
    assert lab.pings(ce, server, count=1) == 0, "reachable before the session exists"

    session_id = create(api, body)
    got = api.wait_status(session_id, "AVAILABLE")
    assert lab.wait_pings(ce, server, seconds=2), "not reachable once AVAILABLE"
    assert lab.pings(ce, server, count=3) == 3

    # the actual* fields: planned at first, then measured by the worker's probes
    assert got["actualLatency"] == pytest.approx(PLANNED_LATENCY_MS)
    measured = wait_for(
        lambda: (s := api.get(f"/sessions/{session_id}").json())["actualLatency"] != PLANNED_LATENCY_MS and s,
        10,
        "a measured actualLatency",
    )
    print(f"planned one-way latency {PLANNED_LATENCY_MS} ms, measured {measured['actualLatency']} ms")
    assert 0 < measured["actualLatency"] < 1.0  # veths: well under a millisecond (no netem here)
    assert measured["actualPacketLossRate"] == 0
    assert measured["actualGuaranteeBandwidth"] == body["guaranteeBandwidth"]  # the enforced shaper rate
    assert measured["actualSla"] == body["sla"]

    assert api.delete(f"/sessions/{session_id}").status_code == 202
    api.wait_gone(session_id)
    assert lab.pings(ce, server, count=2) == 0, "still reachable after DELETE"
    assert session_id not in service_lab.list_services()
    assert not session_nss(service_lab, session_id)


def test_no_traffic_after_expiry_and_actuals_stay_frozen(service_lab: NetnsDriver, api: ApiClient) -> None:
    body = session_request(ce=PORTO_CE, duration={"value": 0.05, "unit": "minutes"})  # 3 s
    ce, server = ce_ns(service_lab, PORTO_CE), server_of(body)
    session_id = create(api, body)
    api.wait_status(session_id, "AVAILABLE")
    assert lab.wait_pings(ce, server, seconds=2)
    ended = api.wait_status(session_id, "UNAVAILABLE", timeout=10)
    assert ended["statusInfo"] == "DURATION_EXPIRED"
    wait_for(lambda: session_id not in service_lab.list_services(), 10, "the expired session's teardown")
    assert lab.pings(ce, server, count=2) == 0, "still reachable after expiry"
    # the last values measured while AVAILABLE are the final ones
    final = api.get(f"/sessions/{session_id}").json()
    assert final["actualLatency"] != PLANNED_LATENCY_MS and final["actualPacketLossRate"] == 0
    time.sleep(0.6)  # longer than a measurement round
    assert api.get(f"/sessions/{session_id}").json()["actualLatency"] == final["actualLatency"]


def test_two_clients_with_identical_addresses_stay_isolated(
    service_lab: NetnsDriver, api: ApiClient, other_api: ApiClient
) -> None:
    server = "10.77.0.10"
    bodies = {}
    for name, ce in (("a", LISBON_CE), ("b", PORTO_CE)):
        body = session_request(ce=ce)  # both: CE LAN 192.168.10.0/24
        body["applicationServers"] = [{"ipv4Address": f"{server}/32"}]
        bodies[name] = body
    ids = {"a": create(api, bodies["a"]), "b": create(other_api, bodies["b"])}
    api.wait_status(ids["a"], "AVAILABLE")
    other_api.wait_status(ids["b"], "AVAILABLE")
    ces = {"a": ce_ns(service_lab, LISBON_CE), "b": ce_ns(service_lab, PORTO_CE)}
    clouds = {name: session_nss(service_lab, sid)["e"] for name, sid in ids.items()}
    with TokenServer(clouds["a"], server, "cloud-a"), TokenServer(clouds["b"], server, "cloud-b"):
        # each CE lands in its own customer's cloud, never in the other one's
        assert fetch_token(ces["a"], server) == "cloud-a"
        assert fetch_token(ces["b"], server) == "cloud-b"
        # the same LAN address exists at both CEs: cloud A's pings to it reach CE A only
        with EchoCounter(ces["a"], server) as at_a, EchoCounter(ces["b"], server) as at_b:
            assert lab.pings(clouds["a"], "192.168.10.1", count=5, source=server) == 5
            assert (at_a.count(), at_b.count()) == (5, 0)
        # deleting A's session leaves B's untouched
        assert api.delete(f"/sessions/{ids['a']}").status_code == 202
        api.wait_gone(ids["a"])
        assert fetch_token(ces["a"], server).startswith("fail")
        assert fetch_token(ces["b"], server) == "cloud-b"


class EchoCounter:
    """Counts ICMP echo requests from ``source`` arriving in namespace ``ns`` (an nft
    table of its own, deleted on exit)."""

    TABLE = "s2cs_echo_probe"

    def __init__(self, ns: str, source: str) -> None:
        self.ns = ns
        rules = (
            f"table ip {self.TABLE} {{\n chain pre {{\n  type filter hook prerouting priority -300;\n"
            f"  ip saddr {source} icmp type echo-request counter\n }}\n}}\n"
        )
        result = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    def count(self) -> int:
        text = lab.sh(self.ns, "nft", "list", "table", "ip", self.TABLE).stdout
        return int(text.split("counter packets ", 1)[1].split()[0])

    def __enter__(self) -> EchoCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        lab.sh(self.ns, "nft", "delete", "table", "ip", self.TABLE)


def _slot(driver: NetnsDriver, session_id: str) -> int:
    for ns in runner.list_netns():
        parsed = driver.names.parse_session_ns(ns)
        if parsed and parsed[1] == session_id:
            return parsed[0]
    raise AssertionError(f"session {session_id} is not in the lab")


def test_patch_bandwidth_retunes_the_shaper(service_lab: NetnsDriver, api: ApiClient) -> None:
    body = session_request(ce=LISBON_CE, bandwidth=20)
    ce, server = ce_ns(service_lab, LISBON_CE), server_of(body)
    session_id = create(api, body)
    api.wait_status(session_id, "AVAILABLE")
    nss = session_nss(service_lab, session_id)
    measured = {20: iperf3_mbps(ce, nss["e"], server)}
    response = api.patch(f"/sessions/{session_id}", json={"guaranteeBandwidth": 60})
    assert response.status_code == 200, response.text
    wait_for(
        lambda: "rate 60Mbit" in lab.sh(nss["a0"], "tc", "qdisc", "show", "dev", service_lab.names.pe_side(0)).stdout,
        10,
        "the shaper at 60 Mbit/s",
    )
    assert session_nss(service_lab, session_id) == nss  # changed in place, not rebuilt
    measured[60] = iperf3_mbps(ce, nss["e"], server)
    print(f"iperf3 through the VPN after PATCH (Mbit/s, guaranteed -> measured): {measured}")
    for mbps, got in measured.items():
        assert abs(got - mbps) <= 0.15 * mbps, measured
    assert api.get(f"/sessions/{session_id}").json()["guaranteeBandwidth"] == 60
