"""Every row of the contract's error table, each answered as ``{status, code, message}``,
and a refused request changes nothing."""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.payloads import CAPACITY_CE, CLOUD_PE, session_request
from tests.support.servers import PREFIX, ApiClient, ServerProcess, free_port


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


def _nested_unknown() -> dict[str, Any]:
    body = session_request()
    body["customerEdge"]["primaryIpAddress"]["color"] = "blue"
    return body


def _wrong_family() -> dict[str, Any]:
    body = session_request()
    body["customerEdge"]["primaryIpAddress"] = {"ipv4Address": "2001:db8::1"}
    return body


def _no_secondaries() -> dict[str, Any]:
    return session_request(isProtected=True)


INVALID_BODIES = {
    "unknown top-level property": session_request(colour="red"),
    "unknown nested property": _nested_unknown(),
    "bad enum": session_request(sla="AAAA"),
    "wrong address family": _wrong_family(),
    "string bandwidth": session_request(bandwidth="100"),  # type: ignore[arg-type]
    "missing required field": {k: v for k, v in session_request().items() if k != "sla"},
    "protected without secondary addresses": _no_secondaries(),
    "customerAsn with static routing": session_request(customerAsn=65001),
    "BGP without customerAsn": session_request(routeProtocol="BGP"),
    "empty application servers": session_request(applicationServers=[]),
    "bad duration unit": session_request(duration={"value": 1, "unit": "weeks"}),
    "port range reversed": session_request(applicationFlows=[{"protocol": "TCP", "serverPorts": {"ranges": [{"from": 9, "to": 1}]}}]),
}

OUT_OF_RANGE_BODIES = {
    "bandwidth 0": session_request(bandwidth=0),
    "bandwidth too large": session_request(bandwidth=1_000_001),
    "latency 0": session_request(maxLatency=0),
    "latency too large": session_request(maxLatency=10_001),
    "port too large": session_request(applicationFlows=[{"protocol": "TCP", "serverPorts": {"ports": [70000]}}]),
    "duration over maximum": session_request(duration={"value": 6, "unit": "years"}),
    "negative duration": session_request(duration={"value": -1, "unit": "hours"}),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_argument(client: ApiClient, body: dict[str, Any]) -> None:
    assert_error(client.post("/sessions", json=body), 400, "INVALID_ARGUMENT")
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 0


@pytest.mark.parametrize("body", OUT_OF_RANGE_BODIES.values(), ids=OUT_OF_RANGE_BODIES.keys())
def test_out_of_range(client: ApiClient, body: dict[str, Any]) -> None:
    assert_error(client.post("/sessions", json=body), 400, "OUT_OF_RANGE")
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 0


def test_body_not_json_missing_or_wrong_media_type(client: ApiClient) -> None:
    assert_error(client.post("/sessions", content=b"{not json", headers={"content-type": "application/json"}), 400, "INVALID_ARGUMENT")
    assert_error(client.post("/sessions", content=b"", headers={"content-type": "application/json"}), 400, "INVALID_ARGUMENT")
    assert_error(client.post("/sessions", content=b"sla=A", headers={"content-type": "text/plain"}), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(client.post("/sessions", json=[1, 2]), 400, "INVALID_ARGUMENT")


def test_x_correlator_is_echoed_and_checked(client: ApiClient) -> None:
    ok = client.get("/sessions", headers={"x-correlator": "b4333c46-49c0-4f62-80d7-f0ef930f1c46"})
    assert ok.headers["x-correlator"] == "b4333c46-49c0-4f62-80d7-f0ef930f1c46"
    error = client.get(f"/sessions/{uuid.uuid4()}", headers={"x-correlator": "abc-123"})
    assert error.status_code == 404 and error.headers["x-correlator"] == "abc-123"
    bad = client.get("/sessions", headers={"x-correlator": "no spaces allowed"})
    assert_error(bad, 400, "INVALID_ARGUMENT")
    assert "x-correlator" not in bad.headers


def test_malformed_session_id_and_unknown_session(client: ApiClient) -> None:
    assert_error(client.get("/sessions/not-a-uuid"), 400, "INVALID_ARGUMENT")
    assert_error(client.get(f"/sessions/{uuid.uuid4()}"), 404, "NOT_FOUND")
    assert_error(client.patch(f"/sessions/{uuid.uuid4()}", json={"sla": "AA"}), 404, "NOT_FOUND")
    assert_error(client.delete(f"/sessions/{uuid.uuid4()}"), 404, "NOT_FOUND")


def test_tokens_missing_malformed_forged_expired(server: ServerProcess, client: ApiClient) -> None:
    url = f"{server.url}{PREFIX}/sessions"
    assert_error(httpx.get(url), 401, "UNAUTHENTICATED")
    assert_error(httpx.get(url, headers={"Authorization": "Bearer not.a.jwt"}), 401, "UNAUTHENTICATED")
    assert_error(httpx.get(url, headers={"Authorization": "Basic abc"}), 401, "UNAUTHENTICATED")
    claims = jwt.decode(client.token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "scope": claims["scope"]}, "secret", algorithm="HS256")
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {forged}"}), 401, "UNAUTHENTICATED")
    unsigned = jwt.encode({**claims, "exp": int(time.time()) + 60}, None, algorithm="none")
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {unsigned}"}), 401, "UNAUTHENTICATED")


def test_the_caller_is_checked_before_what_it_sent(server: ServerProcess) -> None:
    """401 and 403 come before any 400 about the path, query or body (a caller without the
    right token learns nothing about its request)."""
    root = f"{server.url}{PREFIX}"
    not_json = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert_error(httpx.get(f"{root}/sessions/not-a-uuid"), 401, "UNAUTHENTICATED")
    assert_error(httpx.get(f"{root}/sessions", params={"perPage": 0}), 401, "UNAUTHENTICATED")
    assert_error(httpx.post(f"{root}/sessions", **not_json), 401, "UNAUTHENTICATED")  # type: ignore[arg-type]
    with server.api_client(name="read-only", scopes=("site-to-cloud-vpn:sessions:read",)) as reader:
        assert_error(reader.post("/sessions", **not_json), 403, "PERMISSION_DENIED")  # type: ignore[arg-type]
        assert_error(reader.delete("/sessions/not-a-uuid"), 403, "PERMISSION_DENIED")
        assert_error(reader.get("/sessions/not-a-uuid"), 400, "INVALID_ARGUMENT")


def test_scope_missing_is_403(server: ServerProcess) -> None:
    with server.api_client(name="reader", scopes=("site-to-cloud-vpn:sessions:read",)) as reader:
        assert reader.get("/sessions").status_code == 200
        assert_error(reader.post("/sessions", json=session_request()), 403, "PERMISSION_DENIED")
        assert_error(reader.post("/assessment", json={}), 403, "PERMISSION_DENIED")


def test_other_clients_session_is_403_everywhere(client: ApiClient, other_client: ApiClient) -> None:
    session_id = client.post("/sessions", json=session_request()).json()["sessionId"]
    client.wait_status(session_id, "AVAILABLE")
    assert_error(other_client.get(f"/sessions/{session_id}"), 403, "PERMISSION_DENIED")
    assert_error(other_client.patch(f"/sessions/{session_id}", json={"sla": "AA"}), 403, "PERMISSION_DENIED")
    extend = {"requestedAdditionalDuration": {"value": 1, "unit": "hours"}}
    assert_error(other_client.post(f"/sessions/{session_id}/extend", json=extend), 403, "PERMISSION_DENIED")
    assert_error(other_client.delete(f"/sessions/{session_id}"), 403, "PERMISSION_DENIED")
    assert client.get(f"/sessions/{session_id}").json()["status"] == "AVAILABLE"


def test_duplicate_active_session_is_409(client: ApiClient) -> None:
    body = session_request()
    assert client.post("/sessions", json=body).status_code == 201
    assert_error(client.post("/sessions", json=copy.deepcopy(body)), 409, "ALREADY_EXISTS")


def test_a_twin_that_would_not_fit_beside_its_original_is_still_409(client: ApiClient) -> None:
    """The original takes 900 of its port's 1000 Mbps: the twin is told it is a twin, not
    that the port is full."""
    body = session_request(ce=CAPACITY_CE, bandwidth=900)
    first = client.post("/sessions", json=body)
    assert first.status_code == 201, first.text
    try:
        assert_error(client.post("/sessions", json=copy.deepcopy(body)), 409, "ALREADY_EXISTS")
        assert client.get("/sessions").json()["pagination"]["totalCount"] == 1
    finally:
        client.delete(f"/sessions/{first.json()['sessionId']}")
        client.wait_gone(first.json()["sessionId"])


def test_patch_and_extend_when_not_available_is_409(client: ApiClient) -> None:
    """An expired session stays readable for the retention (3 s on the test server)."""
    body = session_request(duration={"value": 0.02, "unit": "minutes"})
    session_id = client.post("/sessions", json=body).json()["sessionId"]
    client.wait_status(session_id, "UNAVAILABLE")
    assert_error(client.patch(f"/sessions/{session_id}", json={"sla": "AA"}), 409, "INCOMPATIBLE_STATE")
    extend = client.post(f"/sessions/{session_id}/extend", json={"requestedAdditionalDuration": {"value": 1, "unit": "hours"}})
    assert_error(extend, 409, "INCOMPATIBLE_STATE")


def test_location_not_served(client: ApiClient) -> None:
    body = assert_error(client.post("/sessions", json=session_request(ce="192.0.2.10")), 422, "SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED")
    assert "192.0.2.10" in body["message"]
    assert_error(client.post("/sessions", json=session_request(pe="192.0.2.1")), 422, "SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED")
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 0


def test_insufficient_resources_names_the_reason(client: ApiClient) -> None:
    too_big = assert_error(client.post("/sessions", json=session_request(bandwidth=5000)), 422, "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES")
    assert "capacity" in too_big["message"].lower() or "port" in too_big["message"].lower()
    too_fast = assert_error(client.post("/sessions", json=session_request(maxLatency=1, pe=CLOUD_PE)), 422, "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES")
    assert "latency" in too_fast["message"].lower()
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 0


def test_private_sink_refused_unless_allowed(client: ApiClient) -> None:
    """The test server allows private sinks; plain https rules still apply to the scheme."""
    response = client.post("/sessions", json=session_request(sink="ftp://example.com/x"))
    assert_error(response, 400, "INVALID_ARGUMENT")


def test_unknown_path_and_method(client: ApiClient) -> None:
    assert_error(client.get("/nothing-here"), 404, "NOT_FOUND")
    assert_error(client.put(f"/sessions/{uuid.uuid4()}", json={}), 405, "METHOD_NOT_ALLOWED")


def test_network_down_is_503_and_nothing_is_accepted(fresh_database_url: str, tmp_path: Path) -> None:
    """With the netns driver and no lab up, orders are refused up front, not failed later."""
    env = {"S2CVPN_DRIVER": "netns", "S2CVPN_NETNS_PREFIX": "s2cz"}  # a lab nobody builds
    server = ServerProcess(database_url=fresh_database_url, port=free_port(), workdir=tmp_path, env=env, ready_path="/health/live")
    with server, server.api_client(name="network-down") as api:
        ready = httpx.get(f"{server.url}/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["network"].startswith("unavailable")
        response = api.post("/sessions", json=session_request())
        assert_error(response, 503, "UNAVAILABLE")
        assert int(response.headers["retry-after"]) > 0
        assert api.get("/sessions").json()["pagination"]["totalCount"] == 0
        assert api.post("/assessment", json={k: v for k, v in session_request().items() if k not in ("serviceName", "sla")}).status_code == 200
