"""``kill -9`` of a netns-driven service in the middle of provisioning, then a restart:
the network converges to exactly what the database holds.

Before the kill: two sessions are AVAILABLE, one of them is being deleted, and several
more were POSTed back to back (their VPNs half built when the process dies). While the
service is down, a VPN no session owns is planted in the lab. After the restart, with
short job leases so the dead process's jobs are taken over quickly: every AVAILABLE
session carries traffic, ``driver.list_services()`` equals the database's live sessions,
no namespace of a session that is gone is left, and each carried session is whole.
Runs on SQLite and on PostgreSQL; the lab (prefix ``s2cr``) is removed and checked empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from s2cvpn.drivers.netns import NetnsDriver, vpn
from tests.dataplane import lab
from tests.dataplane.test_service_api import (
    ce_ns,
    create,
    db_live_sessions,
    netns_env,
    server_of,
    session_nss,
    start_lab,
    wait_for,
)
from tests.drivers.contract import spec_factory
from tests.support.payloads import LISBON_CE, MADRID_CE, PORTO_CE, session_request
from tests.support.servers import ServerProcess, free_port

pytestmark = pytest.mark.netns
PREFIX = "s2cr"
SEVILLE_CE, BILBAO_CE = "198.51.100.40", "198.51.100.50"
CES = (LISBON_CE, PORTO_CE, MADRID_CE, SEVILLE_CE, BILBAO_CE)
BURST = 6  # sessions POSTed back to back right before the kill


@pytest.fixture(scope="module")
def recovery_lab() -> Iterator[NetnsDriver]:
    driver = start_lab(PREFIX)
    try:
        yield driver
    finally:
        lab.teardown(driver)


def test_kill_9_mid_provisioning_then_restart_converges(
    recovery_lab: NetnsDriver, fresh_database_url: str, tmp_path: Path
) -> None:
    driver = recovery_lab
    env = netns_env(PREFIX, S2CVPN_JOB_LEASE_SECONDS="1.5", S2CVPN_RECONCILE_INTERVAL_SECONDS="1")
    port = free_port()
    first = ServerProcess(database_url=fresh_database_url, port=port, workdir=tmp_path, env=env)
    second = ServerProcess(database_url=fresh_database_url, port=port, workdir=tmp_path, env=env)
    orphan = spec_factory(driver.inventory, session_id=f"orphan-{uuid.uuid4().hex[:8]}", slot=4000, ce="198.51.100.31")
    bodies: dict[str, dict] = {}
    try:
        first.start()
        with first.api_client(name=f"crash-{uuid.uuid4().hex[:8]}") as api:
            for ce in CES[:2]:
                body = session_request(ce=ce)
                bodies[create(api, body)] = body
            for session_id in list(bodies):
                api.wait_status(session_id, "AVAILABLE")
            doomed = next(iter(bodies))
            for index in range(BURST):
                body = session_request(ce=CES[index % len(CES)])
                bodies[create(api, body)] = body
            assert api.delete(f"/sessions/{doomed}").status_code == 202
            first.kill()  # SIGKILL, right after the POSTs: provisioning is under way
            at_kill = driver.list_services()
            print(f"\nat the kill: {len(at_kill)} of {len(bodies)} sessions (partly) in the network")

            driver.apply(orphan)  # a VPN no session owns, planted while the service is down
            assert orphan.session_id in driver.list_services()

            second.start()
            api.wait_gone(doomed, timeout=20)
            for session_id in bodies:
                if session_id != doomed:
                    api.wait_status(session_id, "AVAILABLE", timeout=30)

            def converged() -> dict[str, str] | None:
                live = db_live_sessions(fresh_database_url)
                available = {sid for sid, status in live.items() if status == "AVAILABLE"}
                return live if set(live) == available == driver.list_services() else None

            live = wait_for(converged, 20, "the network to hold exactly the database's live sessions", step=0.3)
            assert set(live) == set(bodies) - {doomed}
            assert orphan.session_id not in driver.list_services()
            assert not session_nss(driver, doomed) and not session_nss(driver, orphan.session_id)
            for session_id in live:
                nss = session_nss(driver, session_id)
                assert set(nss) == {"a0", "c0", "e"}, nss  # whole: every namespace of the layout
                assert vpn.read_mark(nss["a0"]) is not None  # and completed (the build's last step)
                ce = ce_ns(driver, bodies[session_id]["customerEdge"]["primaryIpAddress"]["ipv4Address"])
                assert lab.wait_pings(ce, server_of(bodies[session_id]), seconds=2), f"{session_id} carries no traffic"
            api.delete_all_sessions()
            wait_for(lambda: not driver.list_services(), 20, "every session torn down")
    finally:
        first.kill()
        second.stop()
        driver.remove(orphan.session_id)
