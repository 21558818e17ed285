"""Routes of the session resource: thin, they validate, call the service and render."""

from __future__ import annotations

import math
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints, TypeAdapter, ValidationError

from s2cvpn.api import docs
from s2cvpn.api.deps import AuthorizedRoute, caller
from s2cvpn.api.rendering import json_response, session_page_response, session_response
from s2cvpn.api.schemas import ExtendRequest, SessionCreate, SessionInfo, SessionList, SessionUpdate
from s2cvpn.service import sessions as session_service
from s2cvpn.service.context import ServiceContext

SCOPE = "site-to-cloud-vpn:sessions:"
router = APIRouter(tags=["Sessions"], route_class=AuthorizedRoute)

# createSession's Idempotency-Key is read by hand and declared to the document here, not
# as a FastAPI ``Header`` parameter: solving that one parameter cost a create about 24 us,
# as much as validating its body (bench/HISTORY.md, twelfth round)
IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY_TEXT = {"type": "string", "minLength": 1, "maxLength": 256}
IDEMPOTENCY_KEY_PARAMETER = {"name": IDEMPOTENCY_KEY, "in": "header", "required": False, "schema": _KEY_TEXT}
_KEY = TypeAdapter(Annotated[str, StringConstraints(min_length=_KEY_TEXT["minLength"], max_length=_KEY_TEXT["maxLength"])])


def _idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; 400 as for any parameter when out of bounds."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    try:
        return _KEY.validate_python(key)
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("header", IDEMPOTENCY_KEY)} for error in exc.errors()]) from None


@router.post(
    "/sessions",
    operation_id="createSession",
    summary="Create a site-to-cloud VPN session",
    description="Accepts the session (REQUESTED) and provisions it in the background; it becomes AVAILABLE "
    "when the network carries it. The same Idempotency-Key from the same client within 24 hours returns "
    "the first session and creates nothing.",
    status_code=201,
    response_model=SessionInfo,
    responses={**docs.errors(400, 409, 415, 422), 201: {"headers": {"Location": {"schema": {"type": "string", "maxLength": 2048}}}}},
    openapi_extra={**docs.secured(SCOPE + "create"), "parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
async def create_session(request: Request, body: Annotated[SessionCreate, Body()]) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    payload = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    row, _created = await session_service.create_session(
        ctx, client_id=caller(request).client_id, body=payload, idempotency_key=_idempotency_key(request)
    )
    return session_response(row, ctx.clock.now(), status_code=201, headers={"Location": ctx.session_url(row.session_id)})


@router.get(
    "/sessions",
    operation_id="listSessions",
    summary="List the caller's sessions",
    description="Only the sessions the calling client created, oldest first, a page at a time.",
    response_model=SessionList,
    responses=docs.errors(400),
    openapi_extra=docs.secured(SCOPE + "read"),
)
async def list_sessions(
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")] = 1,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=100, description="Items per page")] = 20,
) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    rows, total = await session_service.list_sessions(ctx, client_id=caller(request).client_id, page=page, per_page=per_page)
    pagination = {"page": page, "perPage": per_page, "totalCount": total, "totalPages": math.ceil(total / per_page)}
    return session_page_response(rows, ctx.clock.now(), pagination, headers={"X-Total-Count": str(total)})


@router.get(
    "/sessions/{sessionId}",
    operation_id="getSession",
    summary="Get a session",
    description="The session's request, status and measured values.",
    response_model=SessionInfo,
    responses=docs.errors(400, 404),
    openapi_extra=docs.secured(SCOPE + "read"),
)
async def get_session(request: Request, sessionId: uuid.UUID) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    row = await session_service.get_session(ctx, client_id=caller(request).client_id, session_id=str(sessionId))
    return session_response(row, ctx.clock.now(), read=True)


@router.patch(
    "/sessions/{sessionId}",
    operation_id="updateSession",
    summary="Change a session's bandwidth, SLA or latency bound",
    description="Only while AVAILABLE. The change is planned and reserved at once; one the network cannot carry "
    "is refused with 422 and leaves the session as it was. Accepts application/json and application/merge-patch+json.",
    response_model=SessionInfo,
    responses=docs.errors(400, 404, 409, 415, 422),
    openapi_extra={
        **docs.secured(SCOPE + "update"),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SessionUpdate"}},
                "application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/SessionUpdate"}},
            },
        },
    },
)
async def update_session(
    request: Request,
    sessionId: uuid.UUID,
    body: Annotated[SessionUpdate, Body()],
) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    row = await session_service.update_session(ctx, client_id=caller(request).client_id, session_id=str(sessionId), changes=changes)
    return session_response(row, ctx.clock.now())


@router.post(
    "/sessions/{sessionId}/extend",
    operation_id="extendSessionDuration",
    summary="Extend a session",
    description="Only while AVAILABLE. The total duration is capped at the operator's maximum.",
    response_model=SessionInfo,
    responses=docs.errors(400, 404, 409, 415),
    openapi_extra=docs.secured(SCOPE + "update"),
)
async def extend_session(
    request: Request,
    sessionId: uuid.UUID,
    body: Annotated[ExtendRequest, Body()],
) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    duration = body.requestedAdditionalDuration.model_dump(mode="json")
    row = await session_service.extend_session(ctx, client_id=caller(request).client_id, session_id=str(sessionId), duration=duration)
    return session_response(row, ctx.clock.now())


@router.delete(
    "/sessions/{sessionId}",
    operation_id="deleteSession",
    summary="Delete a session",
    description="Accepted (202): the network is torn down, then the session is gone (404). Until then it reads "
    "UNAVAILABLE with statusInfo DELETE_REQUESTED. A session whose provisioning had not begun is gone at once.",
    status_code=202,
    response_class=Response,
    responses={**docs.errors(400, 404), 202: {"description": "Deletion accepted", "headers": docs.XCORRELATOR_HEADER}},
    openapi_extra=docs.secured(SCOPE + "delete"),
)
async def delete_session(request: Request, sessionId: uuid.UUID) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    await session_service.delete_session(ctx, client_id=caller(request).client_id, session_id=str(sessionId))
    return Response(status_code=202)


@router.get(
    "/sessions/{sessionId}/l3nm",
    operation_id="getSessionL3nm",
    summary="The session's IETF L3NM service document",
    description="Extension of the contract for operators: the RFC 9182 ietf-l3vpn-ntw document of the session's "
    "VPN service, as a controller driver would send it.",
    responses=docs.errors(400, 404),
    openapi_extra=docs.secured(SCOPE + "read"),
)
async def get_session_l3nm(request: Request, sessionId: uuid.UUID) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    return json_response(await session_service.session_l3nm(ctx, client_id=caller(request).client_id, session_id=str(sessionId)))
