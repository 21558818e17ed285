"""Plan a connection: which links carry it, and what it must reserve.

Pure: the reserved load is passed in, nothing is reserved here. To re-plan a change to a
live session (bandwidth, tier, latency), pass a ``load`` from which the session's own
reservations were subtracted; the result's ``demands`` is then the full new reservation.

Constraints (see NETWORK.md): free capacity >= bandwidth on every link and CE port, latency
sum <= ``max_latency_ms``, availability (product of link availabilities) >= tier target.
Among feasible paths the lowest latency wins, then the least loaded (``graph.search``).
If the lowest-latency path misses the availability target, a LARAC Lagrangian relaxation
(a few weighted searches of latency + lambda * -ln(availability)) finds a low-latency path
that meets it; it is a well-known heuristic for this NP-hard problem, exact in practice
on provider topologies.

Protection (``request.protected`` or a tier that needs diversity) reserves two paths that
share no link and no SRLG (1+1): the secondary starts at the secondary attachment's
access PE (else the primary's) and ends at the secondary cloud PE (else the primary's);
the pair's availability is 1 - (1 - a1)(1 - a2). Secondary endpoints are ignored for an
unprotected session. A CE port used by both paths is reserved once: with 1+1, the
duplication happens at the PE, the CE sends the traffic once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from s2cvpn.errors import InsufficientResources, InvalidArgument
from s2cvpn.network.graph import NetworkGraph, Route, network_graph
from s2cvpn.network.inventory import Attachment, Inventory, port_resource
from s2cvpn.network.plans import ConnectionRequest, PathPlan, Plan
from s2cvpn.network.resolve import resolve_endpoints

_EPSILON = 1e-12
_LARAC_ROUNDS = 12
_ALTERNATIVE_PRIMARIES = 8


class NoPath(Exception):
    """A path search failed; the message names the constraint."""


@dataclass(frozen=True)
class _Search:
    """One planning call's fixed inputs."""

    bandwidth_mbps: int
    load: Mapping[str, int]
    capacities: Sequence[int]
    max_latency_us: int | None


def plan_connection(
    inventory: Inventory, request: ConnectionRequest, load: Mapping[str, int], day: date
) -> Plan:
    """Plan ``request`` against ``load`` (Mbps reserved per resource id) on ``day``.

    Raises ``LocationNotServed`` when an address does not resolve, and
    ``InsufficientResources`` naming the constraint that failed.
    """
    return planner_for(inventory).plan(request, load, day)


def planner_for(inventory: Inventory) -> Planner:
    """The inventory's planner (its graph is built on first use, then reused)."""
    return inventory.cached("planner.planner", Planner)


class Planner:
    """Plans connections on one inventory; holds its precomputed graph."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.graph: NetworkGraph = network_graph(inventory)

    def plan(self, request: ConnectionRequest, load: Mapping[str, int], day: date) -> Plan:
        tier = self.inventory.tiers.get(request.sla)
        if tier is None:
            raise InvalidArgument(f"unknown SLA tier {request.sla!r}")
        if request.bandwidth_mbps <= 0:
            raise InvalidArgument("bandwidth must be > 0 Mbps")
        ends = resolve_endpoints(self.inventory, request)
        bw = request.bandwidth_mbps
        protect = request.protected or tier.needs_diversity
        attachments = [ends.attachment]
        second_attachment = ends.secondary_attachment or ends.attachment
        if protect and second_attachment.id != ends.attachment.id:
            attachments.append(second_attachment)
        for attachment in attachments:
            self._check_port(attachment, bw, load)
        search = _Search(
            bandwidth_mbps=bw,
            load=load,
            capacities=self.graph.capacities(day),
            max_latency_us=None if request.max_latency_ms is None else request.max_latency_ms * 1000,
        )
        index = self.graph.index
        src, dst = index[ends.attachment.access_pe], index[ends.cloud_pe.name]
        target = tier.availability_target
        try:
            if not protect:
                primary = self._path(search, src, dst, min_availability=target)
                secondary = None
                availability = self.graph.route_availability(primary)
            else:
                src2 = index[second_attachment.access_pe]
                dst2 = index[(ends.secondary_cloud_pe or ends.cloud_pe).name]
                primary, secondary = self._pair(search, (src, dst), (src2, dst2), target)
                a1, a2 = self.graph.route_availability(primary), self.graph.route_availability(secondary)
                availability = 1 - (1 - a1) * (1 - a2)
        except NoPath as exc:
            raise InsufficientResources(str(exc)) from None
        primary_plan = self._path_plan(primary, ends.attachment.id)
        secondary_plan = None if secondary is None else self._path_plan(secondary, second_attachment.id)
        demands = {port_resource(a.id): bw for a in attachments}
        for route in (primary, secondary):
            for e in route.edges if route else ():
                demands[self.graph.link_ids[e]] = bw
        return Plan(
            sla=request.sla,
            bandwidth_mbps=bw,
            primary=primary_plan,
            secondary=secondary_plan,
            latency_ms=primary_plan.latency_ms,
            availability=availability,
            demands=demands,
        )

    def _check_port(self, attachment: Attachment, bw: int, load: Mapping[str, int]) -> None:
        rid = port_resource(attachment.id)
        free = attachment.port_capacity_mbps - load.get(rid, 0)
        if free < bw:
            raise InsufficientResources(
                f"not enough capacity on the CE port of attachment {attachment.id}: "
                f"{max(free, 0)} Mbps free of {attachment.port_capacity_mbps}, {bw} Mbps requested"
            )

    def _path_plan(self, route: Route, attachment_id: str) -> PathPlan:
        names = self.graph.names
        return PathPlan(
            nodes=tuple(names[n] for n in route.nodes),
            links=tuple(self.graph.link_ids[e] for e in route.edges),
            latency_ms=self.graph.route_latency_ms(route),
            availability=self.graph.route_availability(route),
            attachment_id=attachment_id,
            cloud_pe=names[route.nodes[-1]],
        )

    # --- single constrained path ---------------------------------------------------------

    def _path(
        self, s: _Search, src: int, dst: int, *, min_availability: float, banned: frozenset[int] | set[int] = frozenset()
    ) -> Route:
        """Lowest-latency route meeting capacity, latency and availability, or NoPath."""
        g = self.graph
        route = g.search(src, dst, bandwidth_mbps=s.bandwidth_mbps, load=s.load, capacities=s.capacities, banned=banned)
        if route is None:
            raise NoPath(self._explain_capacity(s, src, dst, banned))
        self._check_latency(s, route, src, dst)
        if g.route_availability(route) >= min_availability - _EPSILON:
            return route
        return self._larac(s, src, dst, route, min_availability, banned)

    def _larac(
        self, s: _Search, src: int, dst: int, fastest: Route, target: float, banned: frozenset[int] | set[int]
    ) -> Route:
        g = self.graph
        kw = {"bandwidth_mbps": s.bandwidth_mbps, "load": s.load, "capacities": s.capacities, "banned": banned}
        safest = g.search(src, dst, weights=g.avail_cost, mix=(0.0, 1.0), **kw)  # type: ignore[arg-type]
        assert safest is not None  # the same links admitted ``fastest``
        best_availability = g.route_availability(safest)
        if best_availability < target - _EPSILON:
            raise NoPath(
                f"availability {_pct(best_availability)} < target {_pct(target)}: the most available path "
                f"from {g.names[src]} to {g.names[dst]} with {s.bandwidth_mbps} Mbps free is not enough"
            )

        def cost(route: Route) -> tuple[int, int]:
            return sum(g.latency_us[e] for e in route.edges), sum(g.avail_cost[e] for e in route.edges)

        fast, safe = fastest, safest
        for _ in range(_LARAC_ROUNDS):
            (c_fast, d_fast), (c_safe, d_safe) = cost(fast), cost(safe)
            if d_fast <= d_safe:
                break
            lam = (c_safe - c_fast) / (d_fast - d_safe)
            # rounded up, so the weights dominate the heuristic's latency + lambda * availability bound
            weights = [lat + math.ceil(lam * ac) for lat, ac in zip(g.latency_us, g.avail_cost)]
            mid = g.search(src, dst, weights=weights, mix=(1.0, lam), **kw)  # type: ignore[arg-type]
            if mid is None or mid in (fast, safe):
                break
            c_mid, d_mid = cost(mid)
            if c_mid + lam * d_mid >= c_fast + lam * d_fast - 1e-6:
                break
            if g.route_availability(mid) >= target - _EPSILON:
                safe = mid
            else:
                fast = mid
        self._check_latency(s, safe, src, dst, why=f"meeting availability {_pct(target)}")
        return safe

    def _check_latency(self, s: _Search, route: Route, src: int, dst: int, why: str = "") -> None:
        if s.max_latency_us is None:
            return
        latency_us = sum(self.graph.latency_us[e] for e in route.edges)
        if latency_us > s.max_latency_us:
            g = self.graph
            raise NoPath(
                f"latency {latency_us / 1000:g} ms > maxLatency {s.max_latency_us / 1000:g} ms: the lowest-latency "
                f"path {why + ' ' if why else ''}from {g.names[src]} to {g.names[dst]} with "
                f"{s.bandwidth_mbps} Mbps free"
            )

    def _explain_capacity(self, s: _Search, src: int, dst: int, banned: frozenset[int] | set[int]) -> str:
        """Name the links that lack capacity on the route that would exist without load."""
        g = self.graph
        topology = g.search(src, dst, bandwidth_mbps=0, load={}, capacities=s.capacities, banned=banned)
        where = f"from {g.names[src]} to {g.names[dst]}"
        if topology is None:
            return f"no route {where}" + (" disjoint (links and SRLGs) from the primary path" if banned else "")
        short = []
        for e in topology.edges:
            free = s.capacities[e] - s.load.get(g.link_ids[e], 0)
            if free < s.bandwidth_mbps:
                short.append(f"{g.link_ids[e]} has {max(free, 0)} Mbps free")
        return f"not enough capacity: no path {where} with {s.bandwidth_mbps} Mbps free on every link ({'; '.join(short)})"

    # --- diverse pair ----------------------------------------------------------------------

    def _pair(
        self, s: _Search, first: tuple[int, int], second: tuple[int, int], target: float
    ) -> tuple[Route, Route]:
        """Primary = best path by latency; secondary = best path avoiding its links and SRLGs
        with enough availability for the pair. If no secondary exists, a few alternative
        primaries (each avoiding one link of the first choice) are tried before giving up."""
        primary = self._path(s, *first, min_availability=0.0)
        try:
            return primary, self._secondary(s, primary, second, target)
        except NoPath as exc:
            failure = exc
        for e in primary.edges[:_ALTERNATIVE_PRIMARIES]:
            try:
                alternative = self._path(s, *first, min_availability=0.0, banned=frozenset((e,)))
                return alternative, self._secondary(s, alternative, second, target)
            except NoPath:
                continue
        raise NoPath(f"diversity not possible: {failure}")

    def _secondary(self, s: _Search, primary: Route, ends: tuple[int, int], target: float) -> Route:
        a1 = self.graph.route_availability(primary)
        needed = 0.0 if a1 >= 1.0 else max(0.0, 1 - (1 - target) / (1 - a1))
        banned = self.graph.conflicting_edges(primary.edges)
        try:
            return self._path(s, *ends, min_availability=needed, banned=banned)
        except NoPath as exc:
            if str(exc).startswith("availability"):
                raise NoPath(f"availability of the protected pair < target {_pct(target)} ({exc})") from None
            raise


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.4f} %"
