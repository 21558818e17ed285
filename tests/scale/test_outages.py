"""Outages: PostgreSQL restarted under load, a sink down for a minute, a sink that hangs."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.scale.support import Api, Cluster, FlakySink, client_token, private_postgres, query, storage_problems, wait_until
from tests.support.payloads import MADRID_CE, session_request
from tests.support.sink import Sink

pytestmark = pytest.mark.postgres


def test_postgres_restart_under_load_answers_503_and_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with private_postgres() as pg, Cluster(pg.url, tmp_path) as cluster:
        replicas = [cluster.serve(), cluster.serve()]
        token = client_token(pg.url, replicas[0].url, "outage")
        accepted: list[str] = []
        codes: Counter[int] = Counter()
        bad: list[str] = []
        stop = threading.Event()

        reads: Counter[int] = Counter()

        def read(api: Api, path: str) -> None:
            """getSession and listSessions use their own driver-level reader: same 503 contract."""
            r = api.get(path, params={"perPage": 5})
            reads[r.status_code] += 1
            if r.status_code not in (200, 503) or (r.status_code == 503 and r.json()["code"] != "UNAVAILABLE"):
                bad.append(f"GET {r.status_code} {r.text[:200]}")

        def load(i: int) -> None:
            with Api(replicas[i % 2].url, token) as api:
                while not stop.is_set():
                    try:
                        r = api.post("/sessions", json=session_request(ce=MADRID_CE, bandwidth=1))
                        codes[r.status_code] += 1
                        if r.status_code == 201:
                            accepted.append(r.json()["sessionId"])
                        elif r.status_code != 503 or r.json()["code"] != "UNAVAILABLE":
                            bad.append(f"{r.status_code} {r.text[:200]}")
                        read(api, "/sessions")
                        if accepted:
                            read(api, f"/sessions/{accepted[-1]}")
                    except httpx.HTTPError as exc:  # a cut connection would be a failure too
                        bad.append(type(exc).__name__)
                        continue
                    time.sleep(0.02)

        threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        before_outage = codes[201]
        pg.stop("fast")
        time.sleep(4)
        during = dict(codes)
        pg.start()
        time.sleep(6)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        print(f"\nresponses: {dict(codes)}; reads {dict(reads)}; before the outage {before_outage} created")
        assert not bad, bad[:10]
        assert codes[503] > 0 and during.get(503, 0) > 0
        assert reads[503] > 0 and reads[200] > 0
        assert codes[201] > during.get(201, 0), "the service did not recover by itself"
        with Api(replicas[0].url, token) as api:
            wait_until(lambda: all(api.get(f"/sessions/{s}").json()["status"] == "AVAILABLE" for s in accepted), 30, "accepted lost")
        rows = query(pg.url, "SELECT count(*) AS n FROM sessions")[0]["n"]
        assert rows == len(accepted)  # nothing accepted lost, nothing half-written kept
        wait_until(lambda: query(pg.url, "SELECT count(*) AS n FROM jobs")[0]["n"] == 0, 30, "jobs left")
        assert storage_problems(pg.url) == []


def test_a_sink_down_for_a_minute_gets_every_event(cluster: Cluster) -> None:
    # an event is retried 1, 3, 7, 15, 31, 63 and 127 s after its first attempt, which comes
    # after went_down: the 63 s retry is the first to fall after the minute, and it must
    # find the sink back for every event (the 127 s one would come after the wait below)
    replica = cluster.serve(env={"S2CVPN_NOTIFY_BACKOFF_SECONDS": "1", "S2CVPN_NOTIFY_MAX_ATTEMPTS": "10"})
    sink = FlakySink()
    with Api(replica.url, client_token(cluster.database_url, replica.url, "sink")) as api:
        went_down = time.monotonic()
        ids = [api.post("/sessions", json=session_request(ce=MADRID_CE, bandwidth=1, sink=sink.url)).json()["sessionId"] for _ in range(20)]
        for sid in ids[:10]:
            wait_until(lambda sid=sid: api.get(f"/sessions/{sid}").json()["status"] == "AVAILABLE", 15, "not AVAILABLE")
            assert api.delete(f"/sessions/{sid}").status_code == 202
        time.sleep(max(0.0, went_down + 60 - time.monotonic()))
        sink.up()
        try:  # a plain wait: when an event is missing, the assertions below say whose
            deadline = time.monotonic() + 45
            while len({e["id"] for e in sink.events()}) < 30 and time.monotonic() < deadline:
                time.sleep(0.1)
            came_back_after = time.monotonic() - went_down
        finally:
            sink.down()
    events = sink.events()
    per_session = Counter(e["data"]["sessionId"] for e in {e["id"]: e for e in events}.values())
    assert all(per_session[s] == (2 if s in ids[:10] else 1) for s in ids), per_session
    assert {e["data"]["status"] for e in events} == {"AVAILABLE", "UNAVAILABLE"}
    assert came_back_after < 105
    assert cluster.counter("s2cvpn_notifications_total", result="retry") >= 30
    assert cluster.counter("s2cvpn_notifications_total", result="delivered") == len(events)


def test_a_sink_that_hangs_does_not_hold_up_another_tenants_events(cluster: Cluster) -> None:
    """Tenant A's sink takes every post and never answers in time; tenant B's answers. A
    creates 40 sessions, then B 5. Every event of B's arrives, and A's sink is posted to
    far less often than A has events: once a post to it has timed out, its events fail
    without a post until its next try (``notifications.SinkHealth``). Before, each of A's
    events took a posting slot for a whole timeout, and again at each of its retries."""
    replica = cluster.serve(env={"S2CVPN_NOTIFY_TIMEOUT_SECONDS": "1"})
    with Sink(delay=60.0) as hung, Sink() as fine:
        with Api(replica.url, client_token(cluster.database_url, replica.url, "tenant-a")) as tenant_a:
            a_ids = [
                tenant_a.post("/sessions", json=session_request(ce=MADRID_CE, bandwidth=1, sink=f"{hung.url}/hook")).json()["sessionId"]
                for _ in range(40)
            ]
        with Api(replica.url, client_token(cluster.database_url, replica.url, "tenant-b")) as tenant_b:
            b_ids = [
                tenant_b.post("/sessions", json=session_request(ce=MADRID_CE, bandwidth=1, sink=f"{fine.url}/hook")).json()["sessionId"]
                for _ in range(5)
            ]
        wait_until(lambda: {event["body"]["data"]["sessionId"] for event in fine.received} >= set(b_ids), 30, "tenant B's events")
        time.sleep(3)  # A's retries go on meanwhile
        posts_to_a = hung.arrived
        failed_without_a_post = query(cluster.database_url, "SELECT count(*) FROM events WHERE outcome LIKE 'sink failing: %'")[0][0]
    assert {event["body"]["data"]["status"] for event in fine.received} == {"AVAILABLE"}
    assert posts_to_a < len(a_ids), posts_to_a
    assert failed_without_a_post > 0
