"""The token endpoint, JWKS and discovery over HTTP, plus the bearer/scope dependencies."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.api import docs, oauth
from s2cvpn.api.deps import AuthorizedRoute, caller
from s2cvpn.auth import clients
from s2cvpn.auth.tokens import TokenService
from s2cvpn.config import ALL_SCOPES, Settings
from s2cvpn.storage.tables import ClientRow

FakeClock = Any  # the conftest fixture: .now() and .advance(seconds)
READ = "site-to-cloud-vpn:sessions:read"
DELETE = "site-to-cloud-vpn:sessions:delete"


@pytest.fixture
async def http(settings: Settings, sessions: async_sessionmaker, clock: FakeClock,
               tokens: TokenService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.settings, app.state.sessions, app.state.clock, app.state.tokens = settings, sessions, clock, tokens
    app.include_router(oauth.router)

    @app.exception_handler(errors.S2CError)
    async def render(_: Request, exc: errors.S2CError) -> JSONResponse:  # stands in for api/handlers.py
        return JSONResponse({"status": exc.status, "code": exc.code, "message": exc.message}, exc.status, exc.headers)

    async def probe(request: Request) -> dict[str, Any]:
        principal = caller(request)
        return {"client_id": principal.client_id, "scopes": sorted(principal.scopes)}

    app.router.add_api_route("/probe", probe, route_class_override=AuthorizedRoute, openapi_extra=docs.secured(READ))

    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def test_an_authorized_route_must_name_its_scope() -> None:
    async def endpoint(request: Request) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="declares no scope"):
        FastAPI().router.add_api_route("/open", endpoint, route_class_override=AuthorizedRoute)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_basic_auth_gets_a_token_that_opens_the_api(http: httpx.AsyncClient, client: tuple[ClientRow, str],
                                                          settings: Settings) -> None:
    row, secret = client
    r = await http.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": READ},
                        headers=_basic(row.client_id, secret))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == READ and body["expires_in"] == 600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == row.client_id and claims["iss"] == settings.issuer()
    probe = await http.get("/probe", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert probe.status_code == 200 and probe.json() == {"client_id": row.client_id, "scopes": [READ]}


async def test_form_auth_and_scope_checks_on_the_api(http: httpx.AsyncClient, sessions: async_sessionmaker,
                                                     clock: FakeClock) -> None:
    async with sessions() as db:
        client_id, secret = await clients.create_client(db, name="deleter", scopes=[DELETE], now=clock.now())
    r = await http.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                               "client_secret": secret})
    assert r.status_code == 200 and r.json()["scope"] == DELETE
    probe = await http.get("/probe", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert probe.status_code == 403 and probe.json()["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearer not.a.jwt"])
async def test_missing_or_malformed_bearer_is_401(http: httpx.AsyncClient, header: str | None) -> None:
    r = await http.get("/probe", headers={"Authorization": header} if header is not None else {})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_secret_is_401_invalid_client(http: httpx.AsyncClient, client: tuple[ClientRow, str]) -> None:
    row, secret = client
    for kwargs in ({"headers": _basic(row.client_id, secret + "x")},
                   {"headers": _basic("c_unknown", secret)},
                   {"headers": {"Authorization": "Basic !!!"}},
                   {}):
        r = await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, **kwargs)
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client" and "error_description" in r.json()
        assert r.headers["www-authenticate"].startswith("Basic")
        assert r.headers["cache-control"] == "no-store"


async def test_request_errors_are_400(http: httpx.AsyncClient, client: tuple[ClientRow, str],
                                      sessions: async_sessionmaker, clock: FakeClock) -> None:
    row, secret = client
    auth = _basic(row.client_id, secret)
    cases = [
        ({"grant_type": "password"}, auth, "unsupported_grant_type"),
        ({}, auth, "invalid_request"),
        ({"grant_type": "client_credentials", "client_secret": secret}, auth, "invalid_request"),  # two methods
        ({"grant_type": "client_credentials", "scope": "site-to-cloud-vpn:sessions:admin"}, auth, "invalid_scope"),
    ]
    for data, headers, error in cases:
        r = await http.post("/oauth2/token", data=data, headers=headers)
        assert (r.status_code, r.json()["error"]) == (400, error), data
    async with sessions() as db:
        ro_id, ro_secret = await clients.create_client(db, name="ro", scopes=[READ], now=clock.now())
    r = await http.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": f"{READ} {DELETE}"},
                        headers=_basic(ro_id, ro_secret))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")


async def test_revoked_client_gets_no_token(http: httpx.AsyncClient, client: tuple[ClientRow, str],
                                            sessions: async_sessionmaker, clock: FakeClock) -> None:
    row, secret = client
    async with sessions() as db:
        await clients.revoke_client(db, row.client_id, clock.now())
    r = await http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                        headers=_basic(row.client_id, secret))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_repeated_failures_lock_the_client_out_with_backoff(
    http: httpx.AsyncClient, client: tuple[ClientRow, str], clock: FakeClock
) -> None:
    row, secret = client
    data = {"grant_type": "client_credentials"}
    for _ in range(5):
        assert (await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, "guess"))).status_code == 401
    r = await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, secret))
    assert r.status_code == 429 and r.json()["error"] == "slow_down"
    assert int(r.headers["retry-after"]) == 30
    clock.advance(30)
    assert (await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, secret))).status_code == 200
    # a success clears the client's record: five more failures are needed before the next lockout
    for _ in range(4):
        assert (await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, "guess"))).status_code == 401
    assert (await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, secret))).status_code == 200


async def test_one_address_guessing_many_clients_is_locked_out(
    http: httpx.AsyncClient, client: tuple[ClientRow, str], clock: FakeClock
) -> None:
    row, secret = client
    data = {"grant_type": "client_credentials"}
    for i in range(20):
        r = await http.post("/oauth2/token", data=data, headers=_basic(f"c_guess{i}", "x"))
        assert r.status_code == 401
    r = await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, secret))
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 30
    clock.advance(31)
    assert (await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, secret))).status_code == 200
    r = await http.post("/oauth2/token", data=data, headers=_basic("c_guess", "x"))
    assert r.status_code == 401  # the address is still on notice: one more failure locks it for twice as long
    r = await http.post("/oauth2/token", data=data, headers=_basic(row.client_id, secret))
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 60


async def test_jwks_verifies_issued_tokens(http: httpx.AsyncClient, client: tuple[ClientRow, str],
                                           settings: Settings) -> None:
    row, secret = client
    token = (await http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                             headers=_basic(row.client_id, secret))).json()["access_token"]
    r = await http.get("/.well-known/jwks.json")
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    jwk_set = jwt.PyJWKSet.from_dict(r.json())
    assert all("d" not in k for k in r.json()["keys"])
    key = jwk_set[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=settings.token_audience,
                        issuer=settings.issuer(), options={"verify_exp": False, "verify_iat": False,
                                                           "verify_nbf": False})
    assert claims["sub"] == row.client_id


async def test_discovery_document(http: httpx.AsyncClient, settings: Settings) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = (await http.get(path, headers={"Host": "evil.example"})).json()
        assert doc["issuer"] == settings.issuer() == "http://127.0.0.1:8080"
        assert doc["token_endpoint"] == "http://127.0.0.1:8080/oauth2/token"
        assert doc["jwks_uri"] == "http://127.0.0.1:8080/.well-known/jwks.json"
        assert doc["grant_types_supported"] == ["client_credentials"]
        assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
        assert doc["scopes_supported"] == list(ALL_SCOPES)
