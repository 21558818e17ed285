"""Who may call a route: ``AuthorizedRoute`` and the database dependency of the OAuth routes.

A protected route is declared on a router whose ``route_class`` is ``AuthorizedRoute`` and
reads its caller with ``caller(request)``. The scope it needs is the one its OpenAPI
``security`` names (``docs.secured``): what the document says is what is enforced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn import errors
from s2cvpn.api import docs
from s2cvpn.auth.principal import Principal
from s2cvpn.service import ratelimit


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as db:
        yield db


_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="s2cvpn"'}


async def _authenticate(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer <token>`` (RFC 6750), verified by TokenService.

    Reads the header by hand rather than through FastAPI's security helpers so a missing
    or malformed header becomes our CAMARA 401, not FastAPI's own 403/401 body.
    """
    header = request.headers.get("authorization")
    if header is None:
        raise errors.Unauthenticated("missing Authorization header", headers=dict(_BEARER_CHALLENGE))
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise errors.Unauthenticated(
            "Authorization header must be 'Bearer <token>'", headers=dict(_BEARER_CHALLENGE)
        )
    principal: Principal = await request.app.state.tokens.verify(token)
    return principal


def _check_rate(request: Request, principal: Principal) -> None:
    """429 TOO_MANY_REQUESTS past ``rate_limit_per_second`` for the caller (shared by replicas)."""
    if not request.app.state.settings.rate_limit_per_second:
        return
    ctx = request.app.state.ctx
    held = getattr(request.app.state, "rate_limiter", None)
    if held is None or held[0] is not ctx:  # one limiter per running application
        held = (ctx, ratelimit.for_database(ctx.settings.rate_limit_per_second, ctx.db, ctx.engine.dialect.name))
        request.app.state.rate_limiter = held
    held[1].check(principal.client_id)


async def authorize(request: Request, scope: str) -> Principal:
    """The caller: 401 without a valid token, 429 past its rate, 403 when the token lacks ``scope``."""
    principal = await _authenticate(request)
    _check_rate(request, principal)
    if scope not in principal.scopes:
        raise errors.PermissionDenied(
            f"the access token lacks the scope {scope}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    return principal


class AuthorizedRoute(APIRoute):
    """A route that authorizes its caller before FastAPI reads the path, query or body.

    So 401, 429 and 403 come before any 400 about the request's content, as at a gateway,
    and a caller without a token learns nothing about what it sent. Why a route class
    rather than a ``Depends``: FastAPI solves a sub-dependency on every request, and on
    getSession that cost about as much as the database read (bench/README.md, fourth round).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        scope = docs.secured_scope(self.openapi_extra)
        if scope is None:
            raise ValueError(f"{self.path} is an authorized route but declares no scope in its OpenAPI security")

        async def authorized(request: Request) -> Response:
            request.state.principal = await authorize(request, scope)
            return await handle(request)

        return authorized


def caller(request: Request) -> Principal:
    """The principal ``AuthorizedRoute`` authorized for this request."""
    principal: Principal = request.state.principal
    return principal
