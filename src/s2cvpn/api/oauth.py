"""The built-in authorization server's HTTP face: token endpoint, JWKS, discovery.

Errors here follow RFC 6749 section 5.2 (``{"error", "error_description"}``), not the
CAMARA error model: OAuth client libraries parse these. Token responses carry
``Cache-Control: no-store``. Neither secrets nor tokens are ever logged.

Secret guessing is slowed by ``clients.FailureThrottle`` per client id and per remote
address (``request.client.host``: run uvicorn with ``--forwarded-allow-ips`` behind a
proxy so it is the real caller). Its state is in the database, shared by the replicas.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn import errors
from s2cvpn.api.deps import get_db
from s2cvpn.auth import clients, keys
from s2cvpn.auth.tokens import OAuthError, TokenService
from s2cvpn.config import ALL_SCOPES, Settings

log = logging.getLogger(__name__)

router = APIRouter(tags=["oauth"])

TOKEN_PATH = "/oauth2/token"
JWKS_PATH = "/.well-known/jwks.json"
JWKS_MAX_AGE_SECONDS = 30  # below keys.ROTATION_PUBLISH_DELAY, see auth/keys.py
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FIELD = 4096


def _oauth_error(error: str, description: str, status: int = 400, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**_NO_STORE, **(headers or {})},
    )


def _invalid_client(description: str) -> JSONResponse:
    return _oauth_error("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="s2cvpn"'})


def _throttle(request: Request) -> clients.FailureThrottle:
    throttle = getattr(request.app.state, "oauth_throttle", None)
    if throttle is None or throttle.sessions is not request.app.state.sessions:  # one per running app
        throttle = clients.FailureThrottle(request.app.state.sessions)
        request.app.state.oauth_throttle = throttle
    return throttle


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """``Basic base64(urlencode(id):urlencode(secret))`` (RFC 6749 section 2.3.1); None if malformed."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


@router.post(TOKEN_PATH)
async def token(request: Request, db: AsyncSession = Depends(get_db)) -> JSONResponse:
    """Client credentials grant (RFC 6749 section 4.4)."""
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - any unparsable body is the client's error
        return _oauth_error("invalid_request", "the body must be application/x-www-form-urlencoded")
    fields: dict[str, str] = {}
    for name in ("grant_type", "scope", "client_id", "client_secret"):
        values = form.getlist(name)
        if len(values) > 1:
            return _oauth_error("invalid_request", f"{name} given more than once")
        if values:
            if not isinstance(values[0], str) or len(values[0]) > _MAX_FIELD:
                return _oauth_error("invalid_request", f"{name} is not a valid value")
            fields[name] = values[0]

    grant_type = fields.get("grant_type")
    if grant_type is None:
        return _oauth_error("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        return _oauth_error("unsupported_grant_type", "only client_credentials is supported")

    authorization = request.headers.get("authorization")
    if authorization is not None:
        if "client_secret" in fields:
            return _oauth_error("invalid_request", "use one client authentication method, not two")
        basic = _basic_credentials(authorization)
        if basic is None:
            return _invalid_client("malformed Basic credentials")
        client_id, client_secret = basic
        if fields.get("client_id") not in (None, client_id):
            return _oauth_error("invalid_request", "client_id does not match the Basic credentials")
    elif "client_id" in fields and "client_secret" in fields:
        client_id, client_secret = fields["client_id"], fields["client_secret"]
    else:
        return _invalid_client("client authentication required (HTTP Basic or client_id/client_secret)")

    throttle = _throttle(request)
    now = request.app.state.clock.now()
    client_key = f"client:{client_id[:64]}"
    address_key = f"addr:{request.client.host if request.client else 'unknown'}"
    wait = await throttle.retry_after([client_key, address_key], now)
    if wait is not None:
        return _oauth_error(
            "slow_down", "too many failed attempts; retry later", 429, {"Retry-After": str(wait)}
        )

    try:
        client = await clients.authenticate_client(db, client_id, client_secret)
    except errors.Unauthenticated:
        now = request.app.state.clock.now()
        await throttle.failure(client_key, throttle.client_limit, now)
        await throttle.failure(address_key, throttle.address_limit, now)
        log.info("token request refused: invalid client credentials")
        return _invalid_client("invalid client credentials")
    await throttle.success(client_key)

    tokens: TokenService = request.app.state.tokens
    try:
        body = await tokens.issue(client, fields.get("scope"))
    except OAuthError as exc:
        return _oauth_error(exc.error, exc.description, exc.status)
    return JSONResponse(body, headers=_NO_STORE)


@router.get(JWKS_PATH)
async def jwks(request: Request, db: AsyncSession = Depends(get_db)) -> JSONResponse:
    """Public keys that verify our tokens, including the next key before it signs."""
    body = await keys.jwks(db, request.app.state.clock.now())
    return JSONResponse(body, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"})


def discovery_document(settings: Settings) -> dict[str, Any]:
    """Metadata (RFC 8414 / OpenID Discovery) built from configuration, never from Host."""
    base = settings.public_url.rstrip("/")
    return {
        "issuer": settings.issuer(),
        "token_endpoint": base + TOKEN_PATH,
        "jwks_uri": base + JWKS_PATH,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(ALL_SCOPES),
        "response_types_supported": [],  # no authorization endpoint
        "access_token_signing_alg_values_supported": [keys.ALGORITHM],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id"],
    }


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> JSONResponse:
    return JSONResponse(discovery_document(request.app.state.settings))


@router.get("/.well-known/oauth-authorization-server")
async def oauth_authorization_server(request: Request) -> JSONResponse:
    return JSONResponse(discovery_document(request.app.state.settings))
