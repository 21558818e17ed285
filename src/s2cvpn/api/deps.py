"""Who may call a route: ``AuthorizedRoute`` and the database dependency of the OAuth routes.

A protected route is declared on a router whose ``route_class`` is ``AuthorizedRoute`` and
reads its caller with ``caller(request)``. The scope it needs is the one its OpenAPI
``security`` names (``docs.secured``): what the document says is what is enforced.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, params
from fastapi._compat import lenient_issubclass
from fastapi.dependencies.utils import get_typed_return_annotation, request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
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
    getSession that cost about as much as the database read (bench/HISTORY.md, fourth round).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = self._direct_handler() or super().get_route_handler()
        scope = docs.secured_scope(self.openapi_extra)
        if scope is None:
            raise ValueError(f"{self.path} is an authorized route but declares no scope in its OpenAPI security")

        async def authorized(request: Request) -> Response:
            request.state.principal = await authorize(request, scope)
            return await handle(request)

        return authorized

    def _direct_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]] | None:
        """FastAPI's handling of a request, without the parts our routes do not use.

        For an endpoint that takes the request, parameters and a JSON body, has no
        dependencies and returns a ``Response`` itself (every route of ours), the parameters
        and the body are validated by the two functions FastAPI's own handler calls, so the
        values and the errors are the same. What is left out: the query string and the
        cookies parsed when no parameter reads them, a spare ``Response`` for dependencies,
        the media type parsed again (``GuardMiddleware`` lets only JSON through), the
        telemetry hooks. Without them a create+delete costs 6% fewer instructions
        (bench/HISTORY.md, fourteenth round). None for any other endpoint: FastAPI handles it.

        The functions it borrows are FastAPI's internals, of the version pinned in
        ``pyproject.toml``; ``tests/api/test_direct_handler.py`` holds every answer to the
        one FastAPI's handler gives, so an upgrade that changes them fails there.
        """
        dependant = self.dependant
        field = self.body_field
        if (
            dependant.dependencies
            or dependant.http_connection_param_name
            or dependant.websocket_param_name
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
            or field is not None and isinstance(field.field_info, params.Form)
            or not inspect.iscoroutinefunction(dependant.call)
            or not lenient_issubclass(get_typed_return_annotation(dependant.call), Response)
        ):
            return None
        endpoint = dependant.call
        # each kind of parameter the endpoint takes, and the request's attribute it is read from
        parameters = [
            (fields, source)
            for fields, source in (
                (dependant.path_params, "path_params"),
                (dependant.query_params, "query_params"),
                (dependant.header_params, "headers"),
                (dependant.cookie_params, "cookies"),
            )
            if fields
        ]
        body_fields = dependant.body_params
        request_name = dependant.request_param_name

        async def handle(request: Request) -> Response:
            values: dict[str, Any] = {}
            errors: list[Any] = []
            for fields, source in parameters:
                found, wrong = request_params_to_args(fields, getattr(request, source))
                values.update(found)
                errors += wrong
            if body_fields:
                body = await _json_body(request)
                body_values, body_errors = await request_body_to_args(body_fields, body, embed_body_fields=False)
                values.update(body_values)
                errors += body_errors
            if errors:
                raise RequestValidationError(errors)
            if request_name:
                values[request_name] = request
            response: Response = await endpoint(**values)
            return response

        return handle


async def _json_body(request: Request) -> Any:
    """The body as FastAPI's handler reads it: parsed when it comes with a media type (JSON,
    once ``GuardMiddleware`` let it through), the bytes when it comes without one, and
    "missing" when empty. (``request_body_to_args`` works out embedding itself.)"""
    raw = await request.body()
    if not raw:
        return PydanticUndefined
    if "content-type" not in request.headers:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}, "ctx": {"error": exc.msg}}
        raise RequestValidationError([error]) from exc
    except (RecursionError, ValueError) as exc:  # nested too deep, not UTF-8
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def caller(request: Request) -> Principal:
    """The principal ``AuthorizedRoute`` authorized for this request."""
    principal: Principal = request.state.principal
    return principal
