"""FastAPI dependencies shared by the routers: database session, caller, scopes, ownership."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from s2cvpn import errors
from s2cvpn.auth.principal import Principal


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as db:
        yield db


_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="s2cvpn"'}


async def current_principal(request: Request) -> Principal:
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


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that returns the caller when its token carries ``scope``, else 403."""

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if scope not in principal.scopes:
            raise errors.PermissionDenied(
                f"the access token lacks the scope {scope}",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return principal

    dependency.__name__ = f"require_scope_{scope.replace(':', '_').replace('-', '_')}"
    return dependency
