"""A session's JSON body: written out in full here, the same whether its encoding is kept
or not, and its servicedDuration always of the ``now`` it is rendered at."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from s2cvpn.api import rendering
from s2cvpn.storage.session_reads import VIEW_FIELDS, SessionView
from tests.support.records import stored_session

CREATED = datetime(2026, 11, 29, 12, 0, 0, 654321, tzinfo=UTC)
STARTED = CREATED + timedelta(seconds=30)
ALLOCATION = {"slot": 4, "service_id": "s2c-4", "p2p_ipv4": ["100.64.0.8/31"], "provider_asn": 64512}
REQUEST = {
    "serviceName": 'named "servicedDuration": on purpose',
    "customerEdge": {"type": "site", "primaryIpAddress": {"ipv4Address": "198.51.100.30"}},
    "sla": "A",
    "guaranteeBandwidth": 5,
    "maxLatency": 9,
    "routeProtocol": "BGP",
}


def _view(**changes: Any) -> SessionView:
    """An AVAILABLE BGP session, as ``SessionReader`` hands it out, with ``changes``."""
    record = replace(
        stored_session(1),
        status="AVAILABLE",
        request=REQUEST,
        sla="AA",
        bandwidth_mbps=20,
        duration_hours=2.0,
        created_at=CREATED,
        started_at=STARTED,
        expires_at=STARTED + timedelta(hours=2),
        allocation=ALLOCATION,
        actual={"actualSla": "AA", "actualGuaranteeBandwidth": 20, "actualLatency": 1.5, "actualPacketLossRate": None},
    )
    return SessionView(**{name: getattr(record, name) for name in VIEW_FIELDS} | changes)


AVAILABLE_BODY = {
    "serviceName": 'named "servicedDuration": on purpose',
    "customerEdge": {"type": "site", "primaryIpAddress": {"ipv4Address": "198.51.100.30"}},
    "sla": "AA",
    "guaranteeBandwidth": 20,
    "routeProtocol": "BGP",
    "sessionId": "00000000-0000-4000-8000-000000000001",
    "duration": {"value": 2.0, "unit": "hours"},
    "status": "AVAILABLE",
    "createdAt": "2026-11-29T12:00:00Z",
    "startedAt": "2026-11-29T12:00:30Z",
    "expiresAt": "2026-11-29T14:00:30Z",
    "servicedDuration": {"value": 0.5, "unit": "hours"},
    "resourceGroupId": "s2c-4",
    "cloudGatewayIp": "100.64.0.8",
    "providerAsn": 64512,
    "actualSla": "AA",
    "actualGuaranteeBandwidth": 20,
    "actualLatency": 1.5,
}
HALF_HOUR_IN = STARTED + timedelta(minutes=30)


@pytest.mark.parametrize("read", [False, True])
def test_the_body_in_full(read: bool) -> None:
    body = rendering.encoded_session(_view(), HALF_HOUR_IN, read=read)
    assert list(json.loads(body).items()) == list(AVAILABLE_BODY.items())  # the members and their order


@pytest.mark.parametrize("read", [False, True])
def test_what_each_status_shows(read: bool) -> None:
    requested = json.loads(rendering.encoded_session(_view(status="REQUESTED", started_at=None, expires_at=None), HALF_HOUR_IN, read=read))
    assert requested["servicedDuration"] == {"value": 0.0, "unit": "hours"}
    assert "actualSla" not in requested and "startedAt" not in requested and "expiresAt" not in requested
    assert requested["resourceGroupId"] == "s2c-4"

    ending = _view(status="UNAVAILABLE", status_info="DELETE_REQUESTED", max_latency_ms=7, allocation=None, actual=None)
    unavailable = json.loads(rendering.encoded_session(ending, HALF_HOUR_IN, read=read))
    assert unavailable["statusInfo"] == "DELETE_REQUESTED" and unavailable["maxLatency"] == 7
    assert list(unavailable)[-1] == "servicedDuration"  # nothing after it: no allocation, no actuals
    assert "resourceGroupId" not in unavailable and "providerAsn" not in unavailable


def test_a_kept_encoding_moves_with_the_clock_and_ends_with_the_session() -> None:
    view = _view()
    for minutes in (30, 90, 30):
        body = json.loads(rendering.encoded_session(view, STARTED + timedelta(minutes=minutes), read=True))
        assert body["servicedDuration"] == {"value": minutes / 60, "unit": "hours"}
        assert {k: v for k, v in body.items() if k != "servicedDuration"} == {
            k: v for k, v in AVAILABLE_BODY.items() if k != "servicedDuration"
        }
    ended = _view(status="UNAVAILABLE", status_info="DURATION_EXPIRED", ended_at=STARTED + timedelta(hours=2))
    for later in (timedelta(hours=3), timedelta(days=9)):
        body = json.loads(rendering.encoded_session(ended, STARTED + later, read=True))
        assert body["servicedDuration"] == {"value": 2.0, "unit": "hours"}  # frozen at its end


def test_only_read_views_are_kept() -> None:
    written = _view()  # a row a write returned: encoded, never kept
    before = rendering._kept_encoding.cache_info()
    rendering.encoded_session(written, HALF_HOUR_IN, read=False)
    assert rendering._kept_encoding.cache_info().currsize == before.currsize
    rendering.encoded_session(written, HALF_HOUR_IN, read=True)
    rendering.encoded_session(written, HALF_HOUR_IN, read=True)
    after = rendering._kept_encoding.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
