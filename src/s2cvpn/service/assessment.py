"""Pre-sales: which tiers the network can carry for a request, at what price and when.
Runs the planner on the live load and reserves nothing."""

from __future__ import annotations

from typing import Any

from s2cvpn.network import assessment
from s2cvpn.service import specs
from s2cvpn.service.context import ServiceContext
from s2cvpn.service.sessions import granted_hours


async def assess(ctx: ServiceContext, *, client_id: str, body: dict[str, Any]) -> assessment.Assessment:
    granted_hours(ctx, body.get("duration"))
    asked = body.get("sla")
    request = specs.connection_request(client_id, body, sla=asked or "A")
    load = await ctx.loads.current()
    return assessment.assess_connection(ctx.inventory, request, load, ctx.clock.now().date(), asked)
