"""CORS when the operator turns it on (S2CVPN_CORS_ORIGINS): an allow-list, never a
wildcard with credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import PREFIX, ServerProcess, free_port

PORTAL = "https://portal.example.com"


@pytest.fixture
def cors_server(fresh_database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"S2CVPN_CORS_ORIGINS": f"{PORTAL}, https://ops.example.com"}
    with ServerProcess(database_url=fresh_database_url, port=free_port(), workdir=tmp_path, env=env) as running:
        yield running


def test_allow_list(cors_server: ServerProcess) -> None:
    url = f"{cors_server.url}{PREFIX}/sessions"
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, x-correlator"}
    allowed = httpx.options(url, headers={"Origin": PORTAL, **ask})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == PORTAL
    assert "access-control-allow-credentials" not in allowed.headers
    assert "x-correlator" in allowed.headers["access-control-allow-headers"].lower()
    refused = httpx.options(url, headers={"Origin": "https://evil.example", **ask})
    assert refused.headers.get("access-control-allow-origin") in (None, "")
    response = httpx.get(url, headers={"Origin": PORTAL})  # no token: 401, still readable by the portal
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == PORTAL
    assert "x-correlator" in response.headers["access-control-expose-headers"].lower()
    assert response.headers.get("access-control-allow-origin") != "*"
