"""Assess a connection without reserving anything: per tier, now, later, or never.

Why it reuses the planner as is: an assessment must promise exactly what a create would
get. For each tier (or the one asked): if the planner finds a plan on ``today`` the tier
is an option; otherwise the planner is re-run with the capacities of planned-upgrade dates
(and today's load): the first date that works gives ``wait_days``; otherwise the
planner's own explanation (for today) is kept as the reason. The load is never modified.

Upgrades never shrink a link (the loader checks it), so feasibility can only go from
"no" to "yes" over time: the last upgrade date is tried first, and the first working date
is then found by bisection, a handful of plans even with hundreds of upgrade dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

from s2cvpn.errors import InsufficientResources
from s2cvpn.network import pricing
from s2cvpn.network.graph import network_graph
from s2cvpn.network.inventory import TIER_NAMES, Inventory
from s2cvpn.network.planner import plan_connection
from s2cvpn.network.plans import ConnectionRequest, Plan
from s2cvpn.network.resolve import resolve_endpoints

INSUFFICIENT_RESOURCES = InsufficientResources.code


@dataclass(frozen=True)
class AssessmentOption:
    """One tier the network can carry: its monthly rent, and when (``wait_days``)."""

    sla: str
    rent_amount: float
    currency: str
    wait_days: int | None  # None: now; else days until the planned upgrade that allows it
    estimated_latency_ms: float


@dataclass(frozen=True)
class Assessment:
    feasible: bool
    options: tuple[AssessmentOption, ...]
    context_code: str | None
    context_message: str | None


def assess_connection(
    inventory: Inventory,
    request: ConnectionRequest,
    load: Mapping[str, int],
    today: date,
    sla: str | None,
) -> Assessment:
    """Options for ``request`` per tier (only ``sla`` when given); reserves nothing.

    ``request.sla`` is ignored (each tier is tried in turn). ``LocationNotServed`` is raised
    as is: an unserved address is not an "infeasible" answer but an error.
    """
    resolve_endpoints(inventory, request)
    tiers = (sla,) if sla is not None else TIER_NAMES
    upcoming = [d for d in network_graph(inventory).upgrade_dates if d > today]
    options: list[AssessmentOption] = []
    reasons: list[str] = []
    for tier in tiers:
        tier_request = replace(request, sla=tier)
        found = _first_feasible(inventory, tier_request, load, today, upcoming)
        if isinstance(found, str):
            reasons.append(f"{tier}: {found}")
            continue
        plan, day = found
        options.append(
            AssessmentOption(
                sla=tier,
                rent_amount=pricing.monthly_rent(inventory, tier, request.bandwidth_mbps, request.protected),
                currency=inventory.provider.currency,
                wait_days=None if day == today else (day - today).days,
                estimated_latency_ms=plan.latency_ms,
            )
        )
    if options:
        return Assessment(feasible=True, options=tuple(options), context_code=None, context_message=None)
    return Assessment(
        feasible=False,
        options=(),
        context_code=INSUFFICIENT_RESOURCES,
        context_message="; ".join(reasons),
    )


def _first_feasible(
    inventory: Inventory, request: ConnectionRequest, load: Mapping[str, int], today: date, upcoming: list[date]
) -> tuple[Plan, date] | str:
    """The plan and the first day (today or an upgrade date) it works, or today's reason."""
    try:
        return plan_connection(inventory, request, load, today), today
    except InsufficientResources as exc:
        reason = exc.message
    found: tuple[Plan, date] | None = None
    low, high = 0, len(upcoming)  # invariant: upcoming[high] works (once found), [.. low) do not
    while low < high:
        mid = high - 1 if found is None else (low + high) // 2
        try:
            found = plan_connection(inventory, request, load, upcoming[mid]), upcoming[mid]
            high = mid
        except InsufficientResources:
            if found is None:
                return reason  # not even with every planned upgrade
            low = mid + 1
    return found if found is not None else reason
