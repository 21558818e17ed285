"""FastAPI dependencies shared by the routers: database session and the authorized caller.

Each protected route has exactly one dependency, ``require_scope``: FastAPI's dependency
resolution costs tens of microseconds per dependency, which on getSession was more than
the database read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn import errors
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


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that returns the caller: 401 without a valid token, 429 past its rate,
    403 when the token lacks ``scope``."""

    async def dependency(request: Request) -> Principal:
        principal = await _authenticate(request)
        _check_rate(request, principal)
        if scope not in principal.scopes:
            raise errors.PermissionDenied(
                f"the access token lacks the scope {scope}",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return principal

    dependency.__name__ = f"require_scope_{scope.replace(':', '_').replace('-', '_')}"
    return dependency
