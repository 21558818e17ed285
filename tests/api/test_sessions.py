"""Every session operation's success path, against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime

from tests.support.payloads import CAPACITY_CE, MADRID_CE, protected_request, session_request
from tests.support.servers import PREFIX, ApiClient, ServerProcess


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_create_answers_201_with_location_and_becomes_available(client: ApiClient, server: ServerProcess) -> None:
    response = client.post("/sessions", json=session_request(bandwidth=50))
    assert response.status_code == 201, response.text
    body = response.json()
    session_id = body["sessionId"]
    assert uuid.UUID(session_id)
    assert response.headers["location"] == f"{server.url}{PREFIX}/sessions/{session_id}"
    assert body["status"] in ("REQUESTED", "AVAILABLE")
    assert "sinkCredential" not in body
    available = client.wait_status(session_id, "AVAILABLE")
    assert available["guaranteeBandwidth"] == 50
    assert available["actualGuaranteeBandwidth"] == 50
    assert available["actualSla"] == "A"
    assert available["actualLatency"] > 0
    assert available["resourceGroupId"]
    assert available["cloudGatewayIp"]
    assert "providerAsn" not in available  # static routing
    started, expires = _ts(available["startedAt"]), _ts(available["expiresAt"])
    assert abs((expires - started).total_seconds() - 4380 * 3600) < 2  # default 6 months
    assert available["duration"] == {"value": 4380, "unit": "hours"}
    assert available["servicedDuration"]["unit"] == "hours"


def test_bgp_session_reports_provider_asn(client: ApiClient) -> None:
    response = client.post("/sessions", json=session_request(routeProtocol="BGP", customerAsn=65010))
    assert response.status_code == 201, response.text
    body = client.wait_status(response.json()["sessionId"], "AVAILABLE")
    assert body["routeProtocol"] == "BGP"
    assert body["customerAsn"] == 65010
    assert isinstance(body["providerAsn"], int) and body["providerAsn"] > 0


def test_ipv6_session(client: ApiClient) -> None:
    body = session_request()
    body["customerEdge"]["primaryIpAddress"] = {"ipv6Address": "2001:db8:100::10"}
    body["applicationServers"] = [{"ipv6Address": "2001:db8:abcd::5"}]
    response = client.post("/sessions", json=body)
    assert response.status_code == 201, response.text
    client.wait_status(response.json()["sessionId"], "AVAILABLE")


def test_protected_session_is_available(client: ApiClient) -> None:
    response = client.post("/sessions", json=protected_request(sla="AAA"))
    assert response.status_code == 201, response.text
    body = client.wait_status(response.json()["sessionId"], "AVAILABLE")
    assert body["isProtected"] is True
    assert body["actualSla"] == "AAA"


def test_get_list_and_pagination_only_show_own_sessions(client: ApiClient, other_client: ApiClient) -> None:
    ids = [client.post("/sessions", json=session_request()).json()["sessionId"] for _ in range(3)]
    theirs = other_client.post("/sessions", json=session_request()).json()["sessionId"]
    page = client.get("/sessions", params={"perPage": 2})
    assert page.status_code == 200
    listing = page.json()
    assert listing["pagination"] == {"page": 1, "perPage": 2, "totalCount": 3, "totalPages": 2}
    second = client.get("/sessions", params={"perPage": 2, "page": 2}).json()
    seen = [item["sessionId"] for item in listing["items"] + second["items"]]
    assert seen == ids  # oldest first, stable across pages
    assert theirs not in seen
    past_end = client.get("/sessions", params={"page": 9}).json()
    assert past_end["items"] == []
    assert client.get(f"/sessions/{ids[0]}").json()["sessionId"] == ids[0]


def test_patch_changes_bandwidth_sla_and_latency(client: ApiClient) -> None:
    session_id = client.post("/sessions", json=session_request(bandwidth=10, maxLatency=500)).json()["sessionId"]
    client.wait_status(session_id, "AVAILABLE")
    response = client.patch(f"/sessions/{session_id}", json={"guaranteeBandwidth": 200, "sla": "AA"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["guaranteeBandwidth"] == 200 and body["sla"] == "AA"
    assert body["actualGuaranteeBandwidth"] == 200
    merge = client.patch(
        f"/sessions/{session_id}", content=b'{"maxLatency": null}', headers={"content-type": "application/merge-patch+json"}
    )
    assert merge.status_code == 200, merge.text
    assert "maxLatency" not in merge.json()
    assert client.get(f"/sessions/{session_id}").json()["guaranteeBandwidth"] == 200


def test_patch_the_network_cannot_carry_is_422_and_changes_nothing(client: ApiClient) -> None:
    session_id = client.post("/sessions", json=session_request(bandwidth=10)).json()["sessionId"]
    client.wait_status(session_id, "AVAILABLE")
    response = client.patch(f"/sessions/{session_id}", json={"guaranteeBandwidth": 5000})  # the Lisbon port is 1000 Mbps
    assert response.status_code == 422
    assert response.json()["code"] == "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES"
    assert client.get(f"/sessions/{session_id}").json()["guaranteeBandwidth"] == 10


def test_extend_adds_time_and_is_capped_at_the_maximum(client: ApiClient) -> None:
    session_id = client.post("/sessions", json=session_request(duration={"value": 1, "unit": "hours"})).json()["sessionId"]
    before = client.wait_status(session_id, "AVAILABLE")
    response = client.post(f"/sessions/{session_id}/extend", json={"requestedAdditionalDuration": {"value": 2, "unit": "days"}})
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["duration"] == {"value": 49, "unit": "hours"}
    assert (_ts(after["expiresAt"]) - _ts(before["expiresAt"])).total_seconds() == 48 * 3600
    capped = client.post(f"/sessions/{session_id}/extend", json={"requestedAdditionalDuration": {"value": 100, "unit": "years"}})
    assert capped.status_code == 200
    assert capped.json()["duration"] == {"value": 43800, "unit": "hours"}


def test_delete_is_202_then_the_session_is_gone(client: ApiClient) -> None:
    session_id = client.post("/sessions", json=session_request(ce=MADRID_CE)).json()["sessionId"]
    client.wait_status(session_id, "AVAILABLE")
    response = client.delete(f"/sessions/{session_id}")
    assert response.status_code == 202
    assert response.content == b""
    after = client.get(f"/sessions/{session_id}")
    assert after.status_code == 404 or after.json()["statusInfo"] == "DELETE_REQUESTED"
    client.wait_gone(session_id)
    assert client.delete(f"/sessions/{session_id}").status_code == 404


def test_capacity_is_returned_on_delete(client: ApiClient) -> None:
    """A 1000 Mbps port: 900 + 900 does not fit, but does once the first is deleted."""
    first = client.post("/sessions", json=session_request(ce=CAPACITY_CE, bandwidth=900)).json()["sessionId"]
    refused = client.post("/sessions", json=session_request(ce=CAPACITY_CE, bandwidth=900))
    assert refused.status_code == 422
    client.delete(f"/sessions/{first}")
    client.wait_gone(first)
    again = client.post("/sessions", json=session_request(ce=CAPACITY_CE, bandwidth=900))
    assert again.status_code == 201, again.text


def test_idempotency_key_returns_the_first_session(client: ApiClient) -> None:
    body = session_request()
    first = client.post("/sessions", json=body, headers={"Idempotency-Key": "order-42"})
    second = client.post("/sessions", json=session_request(), headers={"Idempotency-Key": "order-42"})
    assert first.status_code == 201 and second.status_code == 201
    assert first.json()["sessionId"] == second.json()["sessionId"]
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 1


def test_an_idempotency_key_out_of_bounds_is_400_and_creates_nothing(client: ApiClient) -> None:
    for key, bound in (("k" * 257, "at most 256"), ("", "at least 1")):
        response = client.post("/sessions", json=session_request(), headers={"Idempotency-Key": key})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "INVALID_ARGUMENT"
        assert response.json()["message"].startswith("header.Idempotency-Key:") and bound in response.json()["message"]
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 0
    longest = client.post("/sessions", json=session_request(), headers={"Idempotency-Key": "k" * 256})
    assert longest.status_code == 201, longest.text


def test_an_idempotency_key_whose_session_is_gone_says_so_and_creates_nothing(client: ApiClient) -> None:
    session_id = client.post("/sessions", json=session_request(), headers={"Idempotency-Key": "order-43"}).json()["sessionId"]
    assert client.delete(f"/sessions/{session_id}").status_code == 202
    client.wait_gone(session_id)
    again = client.post("/sessions", json=session_request(), headers={"Idempotency-Key": "order-43"})
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "ALREADY_EXISTS"
    assert f"created session {session_id}, which no longer exists" in again.json()["message"]
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 0


def test_l3nm_extension_returns_the_service_document(client: ApiClient, other_client: ApiClient) -> None:
    session_id = client.post("/sessions", json=session_request(routeProtocol="BGP", customerAsn=65020)).json()["sessionId"]
    response = client.get(f"/sessions/{session_id}/l3nm")
    assert response.status_code == 200
    services = response.json()["ietf-l3vpn-ntw:l3vpn-ntw"]["vpn-services"]["vpn-service"]
    assert len(services) == 1
    assert other_client.get(f"/sessions/{session_id}/l3nm").status_code == 403


def test_health_metrics_and_openapi(server: ServerProcess) -> None:
    import httpx

    assert httpx.get(f"{server.url}/health/live").json()["status"] == "ok"
    assert httpx.get(f"{server.url}/health/ready").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics")
    assert "s2cvpn_http_requests_total" in metrics.text
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert spec["info"]["version"] == "0.1.0"
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "assessConnectionFeasibility",
        "createSession",
        "listSessions",
        "getSession",
        "updateSession",
        "extendSessionDuration",
        "deleteSession",
    } <= operations
    create = spec["paths"][f"{PREFIX}/sessions"]["post"]
    assert create["security"] == [{"openId": ["site-to-cloud-vpn:sessions:create"]}]


def test_cli_prints_the_l3nm_document(client: ApiClient, server: ServerProcess) -> None:
    import json
    import os
    import subprocess
    import sys

    created = client.post("/sessions", json=session_request(routeProtocol="BGP", customerAsn=65030)).json()
    env = {**os.environ, "S2CVPN_DATABASE_URL": server.database_url}
    result = subprocess.run(
        [sys.executable, "-m", "s2cvpn", "sessions", "l3nm", created["sessionId"]], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    service = document["ietf-l3vpn-ntw:l3vpn-ntw"]["vpn-services"]["vpn-service"][0]
    assert service["vpn-id"] == created["resourceGroupId"]
    assert client.get(f"/sessions/{created['sessionId']}/l3nm").json() == document
    missing = subprocess.run([sys.executable, "-m", "s2cvpn", "sessions", "l3nm", "no-such-id"], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no session" in missing.stderr
