"""The assessment route: feasibility, tiers, price and wait, reserving nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from s2cvpn.api import docs
from s2cvpn.api.deps import AuthorizedRoute, caller
from s2cvpn.api.rendering import json_response
from s2cvpn.api.schemas import AssessmentRequest, AssessmentResult
from s2cvpn.service import assessment as assessment_service

SCOPE = "site-to-cloud-vpn:assessment:assess"
router = APIRouter(tags=["Assessment"], route_class=AuthorizedRoute)


@router.post(
    "/assessment",
    operation_id="assessConnectionFeasibility",
    summary="Assess a connection before ordering it",
    description="Whether the network can carry the connection, for each SLA tier (or only the one asked): "
    "monthly rent from the price book, estimated latency, and waitDays when capacity exists only after a "
    "planned upgrade. Creates and reserves nothing.",
    response_model=AssessmentResult,
    responses=docs.errors(400, 415, 422),
    openapi_extra=docs.secured(SCOPE),
)
async def assess_connection_feasibility(
    request: Request,
    body: Annotated[AssessmentRequest, Body()],
) -> Response:
    ctx = request.app.state.ctx
    payload = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    result = await assessment_service.assess(ctx, client_id=caller(request).client_id, body=payload)
    options = []
    for option in result.options:
        item = {
            "sla": option.sla,
            "rent": {"amount": option.rent_amount, "currency": option.currency},
            "estimatedLatency": round(option.estimated_latency_ms, 3),
        }
        if option.wait_days is not None:
            item["waitDays"] = option.wait_days
        options.append(item)
    answer: dict[str, object] = {"feasible": result.feasible, "options": options}
    if result.context_code:
        answer["contextCode"] = result.context_code
    if result.context_message:
        answer["contextMessage"] = result.context_message[:512]
    return json_response(answer)
