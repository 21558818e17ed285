"""Assessment: per-tier options with price, wait and latency; reserves nothing."""

from __future__ import annotations

from tests.support.payloads import ASSESSMENT_CE, assessment_request, protected_request, session_request
from tests.support.servers import ApiClient


def test_assessment_lists_tiers_with_prices_and_reserves_nothing(client: ApiClient) -> None:
    response = client.post("/assessment", json=assessment_request(ce=ASSESSMENT_CE, bandwidth=100))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["feasible"] is True
    by_tier = {option["sla"]: option for option in result["options"]}
    assert {"A", "AA"} <= set(by_tier)
    assert by_tier["A"]["rent"]["currency"] == "EUR"
    assert by_tier["AA"]["rent"]["amount"] >= by_tier["A"]["rent"]["amount"]
    assert all(option["estimatedLatency"] > 0 for option in result["options"])
    assert client.get("/sessions").json()["pagination"]["totalCount"] == 0
    # nothing reserved: the full port is still there for a session
    assert client.post("/sessions", json=session_request(ce=ASSESSMENT_CE, bandwidth=1000)).status_code == 201


def test_assessment_of_one_tier(client: ApiClient) -> None:
    result = client.post("/assessment", json=assessment_request(sla="AA")).json()
    assert [option["sla"] for option in result["options"]] == ["AA"]


def test_protected_assessment_costs_more(client: ApiClient) -> None:
    plain = client.post("/assessment", json=assessment_request(sla="AA")).json()
    body = protected_request(sla="AA")
    body.pop("serviceName")
    protected = client.post("/assessment", json=body).json()
    assert protected["feasible"], protected
    assert protected["options"][0]["rent"]["amount"] > plain["options"][0]["rent"]["amount"]


def test_infeasible_assessment_says_why(client: ApiClient) -> None:
    result = client.post("/assessment", json=assessment_request(bandwidth=900_000)).json()
    assert result["feasible"] is False
    assert result["options"] == []
    assert result["contextCode"] == "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES"
    assert result["contextMessage"]


def test_assessment_of_unserved_location_is_422(client: ApiClient) -> None:
    response = client.post("/assessment", json=assessment_request(ce="192.0.2.55"))
    assert response.status_code == 422
    assert response.json()["code"] == "SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED"
