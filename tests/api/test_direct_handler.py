"""``AuthorizedRoute``'s direct handler answers every request as FastAPI's own handler does.

The same requests go to two copies of the real application, each on its own SQLite file:
one as shipped, whose routes use the direct handler, and one whose routes were built with
FastAPI's handler. Bad JSON, bodies nested too deep or not UTF-8, missing or untyped bodies,
wrong types, unknown properties, values out of range, malformed path and query parameters:
each must get the same status and the same body from both.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from s2cvpn.api.deps import AuthorizedRoute
from s2cvpn.app import create_app
from s2cvpn.config import Settings
from tests.support.payloads import assessment_request, session_request
from tests.support.servers import PREFIX, register_client

JSON = {"content-type": "application/json"}
SOME_ID = str(uuid.UUID(int=7))


async def _running_app(folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The application on a fresh SQLite file, started, with a client's bearer token."""
    folder.mkdir()
    database_url = f"sqlite:///{folder / 's2cvpn.db'}"
    app = create_app(Settings(database_url=database_url), embed_worker=False)
    async with app.router.lifespan_context(app):
        client_id, secret = await asyncio.to_thread(register_client, database_url, "direct-handler")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
            token = (await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})).json()
            http.headers["Authorization"] = f"Bearer {token['access_token']}"
            yield http


@pytest.fixture
async def direct(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _running_app(tmp_path / "direct"):
        yield http


@pytest.fixture
async def fastapi_handled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    with monkeypatch.context() as patched:
        patched.setattr(AuthorizedRoute, "_direct_handler", lambda _route: None)
        running = _running_app(tmp_path / "fastapi")
        http = await running.__anext__()  # the routes are built while the patch holds
    yield http
    await running.aclose()


def _body(**changes: Any) -> bytes:
    return json.dumps({**session_request(), **changes}).encode()


REQUESTS: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("POST", "/sessions", b"{", JSON),
    ("POST", "/sessions", b"not json", JSON),
    ("POST", "/sessions", b'{"serviceName": "\xff"}', JSON),
    ("POST", "/sessions", b"[" * 5_000 + b"]" * 5_000, JSON),
    ("POST", "/sessions", b'{"a":' * 3_000 + b"1" + b"}" * 3_000, JSON),
    ("POST", "/sessions", b"", JSON),
    ("POST", "/sessions", None, {}),
    ("POST", "/sessions", _body(), {}),  # a body without a media type
    ("POST", "/sessions", b"null", JSON),
    ("POST", "/sessions", b"[]", JSON),
    ("POST", "/sessions", b'"text"', JSON),
    ("POST", "/sessions", _body(guaranteeBandwidth="100"), JSON),
    ("POST", "/sessions", _body(guaranteeBandwidth=0), JSON),
    ("POST", "/sessions", _body(sla="B"), JSON),
    ("POST", "/sessions", _body(surprise=True), JSON),
    ("POST", "/sessions", json.dumps({k: v for k, v in session_request().items() if k != "sla"}).encode(), JSON),
    ("POST", "/assessment", b"{", JSON),
    ("POST", "/assessment", json.dumps({**assessment_request(), "guaranteeBandwidth": -1}).encode(), JSON),
    ("GET", "/sessions/not-a-uuid", None, {}),
    ("GET", f"/sessions/{SOME_ID}", None, {}),
    ("DELETE", "/sessions/not-a-uuid", None, {}),
    ("DELETE", f"/sessions/{SOME_ID}", None, {}),
    ("GET", f"/sessions/{SOME_ID}/l3nm", None, {}),
    ("PATCH", "/sessions/not-a-uuid", b'{"guaranteeBandwidth": 20}', JSON),
    ("PATCH", f"/sessions/{SOME_ID}", b'{"guaranteeBandwidth": "20"}', JSON),
    ("PATCH", f"/sessions/{SOME_ID}", b'{"guaranteeBandwidth": 20}', JSON),
    ("PATCH", f"/sessions/{SOME_ID}", b"", JSON),
    ("POST", f"/sessions/{SOME_ID}/extend", b'{"requestedAdditionalDuration": {"value": 1}}', JSON),
    ("POST", f"/sessions/{SOME_ID}/extend", b'{"requestedAdditionalDuration": {"value": 1, "unit": "HOURS"}}', JSON),
    ("GET", "/sessions?perPage=0", None, {}),
    ("GET", "/sessions?page=abc", None, {}),
    ("GET", "/sessions?perPage=101&page=2", None, {}),
    ("GET", "/sessions?perPage=5", None, {}),
]


async def test_every_authorized_route_of_the_api_takes_the_direct_handler(direct: httpx.AsyncClient) -> None:
    app = direct._transport.app  # type: ignore[attr-defined]
    routes = [route for route in app.router.routes if isinstance(route, AuthorizedRoute)]
    assert len(routes) == 8
    assert all(route._direct_handler() is not None for route in routes)


@pytest.mark.parametrize(("method", "path", "content", "headers"), REQUESTS, ids=[f"{m} {p} #{i}" for i, (m, p, _c, _h) in enumerate(REQUESTS)])
async def test_answers_as_fastapi_does(
    direct: httpx.AsyncClient, fastapi_handled: httpx.AsyncClient, method: str, path: str, content: bytes | None, headers: dict[str, str]
) -> None:
    answers = [await http.request(method, PREFIX + path, content=content, headers=headers) for http in (direct, fastapi_handled)]
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].json() == answers[1].json()
    assert answers[0].status_code != 500


async def test_a_created_session_reads_back_the_same_through_both(direct: httpx.AsyncClient, fastapi_handled: httpx.AsyncClient) -> None:
    body = session_request()
    created = [await http.post(PREFIX + "/sessions", json=body) for http in (direct, fastapi_handled)]
    assert [answer.status_code for answer in created] == [201, 201]
    read = [await http.get(PREFIX + f"/sessions/{answer.json()['sessionId']}") for http, answer in zip((direct, fastapi_handled), created)]
    assert [answer.status_code for answer in read] == [200, 200]
    # its id, its times, and what its randomly drawn pool slot gives it
    volatile = ("sessionId", "createdAt", "startedAt", "expiresAt", "cloudGatewayIp", "resourceGroupId")
    same = [{k: v for k, v in answer.json().items() if k not in volatile} for answer in read]
    assert same[0] == same[1]
    assert same[0]["serviceName"] == body["serviceName"]
