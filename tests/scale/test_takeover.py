"""Workers that stop: SIGTERM finishes or releases, kill -9 is taken over after the lease."""

from __future__ import annotations

import time

import pytest

from s2cvpn.jobs.worker import BLOCKING_DRIVER_JOBS
from tests.scale.support import Api, Cluster, client_token, query, storage_problems, wait_until
from tests.support.payloads import MADRID_CE, session_request

pytestmark = pytest.mark.postgres
SLOW = {"S2CVPN_MODEL_APPLY_DELAY_SECONDS": "2", "S2CVPN_JOB_LEASE_SECONDS": "2"}


def _jobs(url: str) -> list[dict]:
    return [dict(r) for r in query(url, "SELECT job_id, kind, session_id, attempts, locked_by FROM jobs ORDER BY job_id")]


def _held_by(url: str, pid: int, kind: str) -> list[dict]:
    return [j for j in _jobs(url) if j["kind"] == kind and j["locked_by"] and f":{pid}:" in j["locked_by"]]


def _api(cluster: Cluster, proc) -> Api:  # type: ignore[no-untyped-def]
    return Api(proc.url, client_token(cluster.database_url, proc.url, "scale"))


def test_sigterm_finishes_the_jobs_in_hand_and_releases_the_rest(cluster: Cluster) -> None:
    api_proc = cluster.serve(worker=False)
    env = {**SLOW, "S2CVPN_JOB_LEASE_SECONDS": "60"}
    with _api(cluster, api_proc) as api:
        count = BLOCKING_DRIVER_JOBS + 4  # one batch (its slow model driver blocks): BLOCKING_DRIVER_JOBS in hand, 4 waiting
        ids = [api.post("/sessions", json=session_request(ce=MADRID_CE, bandwidth=1)).json()["sessionId"] for _ in range(count)]
        first = cluster.worker(env=env)
        wait_until(lambda: len(_held_by(cluster.database_url, first.pid, "provision")) == count, 10, "the batch was never claimed")
        time.sleep(0.5)  # the driver calls are under way
        started = time.monotonic()
        assert first.terminate(timeout=30) == 0, first.tail()
        stopped_after = time.monotonic() - started
        # the jobs in hand were finished (AVAILABLE), the others given back at once, unlocked, attempt not spent
        statuses = [api.get(f"/sessions/{sid}").json()["status"] for sid in ids]
        assert statuses.count("AVAILABLE") == BLOCKING_DRIVER_JOBS, statuses
        left = _jobs(cluster.database_url)
        assert len(left) == 4 and all(j["locked_by"] is None and j["attempts"] == 0 for j in left), left
        assert stopped_after < 10, stopped_after
        # a new worker takes them at once, well before the 60 s lease the first one held
        cluster.worker(env=env)
        wait_until(lambda: all(api.get(f"/sessions/{s}").json()["status"] == "AVAILABLE" for s in ids), 20, "not all AVAILABLE")
    assert _jobs(cluster.database_url) == []
    assert storage_problems(cluster.database_url) == []


@pytest.mark.parametrize("phase", ["provision", "teardown"])
def test_kill_9_in_the_middle_is_taken_over_after_the_lease(cluster: Cluster, phase: str) -> None:
    api_proc = cluster.serve(worker=False)
    env = {**SLOW, "S2CVPN_MODEL_APPLY_DELAY_SECONDS": "3"}
    victim = cluster.worker(env=env)
    with _api(cluster, api_proc) as api:
        sid = api.post("/sessions", json=session_request(ce=MADRID_CE, bandwidth=5)).json()["sessionId"]
        if phase == "teardown":
            api.get(f"/sessions/{sid}")
            wait_until(lambda: api.get(f"/sessions/{sid}").json()["status"] == "AVAILABLE", 15, "never AVAILABLE")
            assert api.delete(f"/sessions/{sid}").status_code == 202
        wait_until(lambda: _held_by(cluster.database_url, victim.pid, phase), 10, f"the {phase} job was never claimed")
        time.sleep(1.0)  # inside the 3 s driver call
        victim.kill()
        killed_at = time.monotonic()
        heir = cluster.worker(env=env)
        wait_until(lambda: _held_by(cluster.database_url, heir.pid, phase), 15, "the job was not taken over")
        taken_after = time.monotonic() - killed_at
        if phase == "provision":
            body = wait_until(lambda: (b := api.get(f"/sessions/{sid}").json())["status"] == "AVAILABLE" and b, 15, "not AVAILABLE")
            assert body["status"] == "AVAILABLE"
        else:
            wait_until(lambda: api.get(f"/sessions/{sid}").status_code == 404, 15, "the session was not removed")
    assert taken_after >= 0.5, "taken over before the lease ran out"
    assert _jobs(cluster.database_url) == []
    assert heir.metrics()[("s2cvpn_driver_calls_total", (("cause", "job"), ("op", "apply" if phase == "provision" else "remove")))] == 1
    assert storage_problems(cluster.database_url) == []
    load = query(cluster.database_url, "SELECT coalesce(sum(reserved_mbps), 0) AS s FROM resource_load")[0]["s"]
    demands = query(cluster.database_url, "SELECT count(*) AS n FROM sessions, json_each_text(plan -> 'demands') WHERE session_id = $1", sid)
    assert load == (0 if phase == "teardown" else 5 * demands[0]["n"])
    slots = query(cluster.database_url, "SELECT session_id FROM sessions WHERE slot IS NOT NULL AND released_at IS NULL")
    assert [r["session_id"] for r in slots] == ([] if phase == "teardown" else [sid])


def test_a_lease_shorter_than_the_network_never_runs_a_job_twice(cluster: Cluster) -> None:
    """Heartbeats keep a 1 s lease over 2 s driver calls: two workers, every apply once."""
    env = {"S2CVPN_MODEL_APPLY_DELAY_SECONDS": "2", "S2CVPN_JOB_LEASE_SECONDS": "1"}
    api_proc = cluster.serve(worker=False)
    workers = [cluster.worker(env=env), cluster.worker(env=env)]
    with _api(cluster, api_proc) as api:
        ids = [api.post("/sessions", json=session_request(ce=MADRID_CE, bandwidth=1)).json()["sessionId"] for _ in range(4)]
        wait_until(lambda: all(api.get(f"/sessions/{s}").json()["status"] == "AVAILABLE" for s in ids), 30, "not all AVAILABLE")
    assert cluster.counter("s2cvpn_driver_calls_total", op="apply", cause="job") == len(ids)
    assert cluster.counter("s2cvpn_jobs_total", result="lease_lost") == 0
    assert cluster.counter("s2cvpn_jobs_total", kind="provision", result="done") == len(ids)
    assert all(w.process is not None and w.process.poll() is None for w in workers)
