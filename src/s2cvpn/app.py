"""The ASGI application: ``create_app(settings)`` wires routers, middleware and handlers;
the lifespan builds everything that touches the outside world (nothing at import time)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from s2cvpn import __version__
from s2cvpn.api import assessment, docs, handlers, health, oauth, sessions
from s2cvpn.api.middleware import GuardMiddleware
from s2cvpn.auth.tokens import TokenService
from s2cvpn.bootstrap import open_context
from s2cvpn.clock import Clock
from s2cvpn.config import ALL_SCOPES, Settings
from s2cvpn.jobs.worker import Worker

log = logging.getLogger(__name__)
API_DESCRIPTION = """\
The CAMARA Site-to-Cloud VPN API: order private connectivity between a customer edge router
(CE) and a cloud provider edge (PE), with an availability tier, a guaranteed bandwidth, an
optional latency bound, optional protection over diverse paths, and static or BGP routing.

# Request body strictness
A request body with a property this document does not declare, at any depth, is refused
with 400 INVALID_ARGUMENT.

# Choices where the contract is silent
- `duration` in responses is always expressed in hours (the granted total, after extensions).
- PATCH `maxLatency: null` removes the latency bound.
- Sinks must be https URLs that resolve to public addresses unless the operator allows
  private sinks (labs and tests).
- Pagination: `page` (from 1) and `perPage` (1..100, default 20), oldest session first.
"""


def create_app(settings: Settings, *, clock: Clock | None = None, embed_worker: bool = True, migrate_on_start: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_context(settings, clock=clock, migrate_first=migrate_on_start) as ctx:
            tokens = TokenService(settings, ctx.db, ctx.clock)
            await tokens.start()
            app.state.settings = settings
            app.state.clock = ctx.clock
            app.state.sessions = ctx.db
            app.state.tokens = tokens
            app.state.ctx = ctx
            worker = Worker(ctx, behind_requests=True) if embed_worker else None
            if worker is not None:
                await worker.start()
            try:
                yield
            finally:
                if worker is not None:
                    await worker.stop()
                await tokens.aclose()

    app = FastAPI(
        title="Site-to-Cloud VPN",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # off unless asked: FastAPI otherwise looks up the OpenTelemetry providers on every request
        telemetry={"tracing": settings.opentelemetry, "metrics": settings.opentelemetry, "logs": settings.opentelemetry},
    )
    app.add_middleware(GuardMiddleware, api_prefix=settings.api_prefix, max_body_bytes=settings.max_body_bytes)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # off by default: a public API gateway in front usually owns CORS
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=False,  # bearer tokens, never cookies: no credentialed CORS
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "x-correlator", "Idempotency-Key"],
            expose_headers=["x-correlator", "Location", "X-Total-Count"],
            max_age=600,
        )
    handlers.install(app)
    _add_routes(app, sessions.router, prefix=settings.api_prefix)
    _add_routes(app, assessment.router, prefix=settings.api_prefix)
    _add_routes(app, oauth.router)
    _add_routes(app, health.router)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


# what a route was declared with, passed on unchanged when it is re-added to the application
_ROUTE_OPTIONS = (
    "response_model", "status_code", "tags", "dependencies", "summary", "description", "response_description",
    "responses", "deprecated", "methods", "operation_id", "response_model_include", "response_model_exclude",
    "response_model_by_alias", "response_model_exclude_unset", "response_model_exclude_defaults",
    "response_model_exclude_none", "include_in_schema", "response_class", "name", "callbacks", "openapi_extra",
    "generate_unique_id_function",
)


def _add_routes(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Put ``router``'s routes on the application's own route list, under ``prefix``.

    Why not ``app.include_router``: since FastAPI 0.137 an included router stays a node of
    the route tree and is walked again on every request. On getSession that walk was 20 of
    the 140 us a request cost in-process (bench/HISTORY.md, fourth round). Re-adding each
    route with the options it was declared with gives the one flat list that
    ``include_router`` itself built before 0.137.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"only API routes can be added flat, not {route!r}")
        options = {name: getattr(route, name) for name in _ROUTE_OPTIONS}
        app.router.add_api_route(prefix + route.path, route.endpoint, route_class_override=type(route), **options)


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes, tags=docs.TAGS)
    schema["info"]["x-camara-commonalities"] = "0.8.0"
    schema["info"]["x-s2cvpn-version"] = __version__
    schema["servers"] = [
        {
            "url": "{apiRoot}",
            "variables": {"apiRoot": {"default": settings.public_url.rstrip("/"), "description": "API root: scheme, host and port"}},
        }
    ]
    schema.setdefault("components", {})["securitySchemes"] = {
        docs.SECURITY_SCHEME: {
            "type": "openIdConnect",
            "openIdConnectUrl": f"{settings.issuer()}/.well-known/openid-configuration",
            "description": "OAuth 2.0 client credentials; scopes: " + ", ".join(ALL_SCOPES),
        }
    }
    app.openapi_schema = docs.finish(schema, api_prefix=settings.api_prefix)
    return app.openapi_schema
