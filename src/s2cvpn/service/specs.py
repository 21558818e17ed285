"""Plans and allocations to and from the JSON kept on a session row, and the
``ServiceSpec`` a driver receives, built from that row alone."""

from __future__ import annotations

import ipaddress
from dataclasses import fields
from typing import Any

from s2cvpn.drivers.base import FlowSpec, ServiceSpec
from s2cvpn.network import addresses, l3nm
from s2cvpn.network.inventory import Inventory
from s2cvpn.network.plans import Allocation, ConnectionRequest, PathPlan, Plan
from s2cvpn.storage.session_store import SessionRecord
from s2cvpn.storage.tables import SessionRow


def plan_to_json(plan: Plan) -> dict[str, Any]:
    # by hand: asdict() deep-copies every value on its way (its tuples are immutable and
    # shared as they are), several times the CPU, inside the create's write transaction
    data = _shallow(plan)
    data["primary"] = _shallow(plan.primary)
    data["secondary"] = None if plan.secondary is None else _shallow(plan.secondary)
    data["demands"] = dict(plan.demands)
    return data


def _path(data: dict[str, Any] | None) -> PathPlan | None:
    if data is None:
        return None
    return PathPlan(**{**data, "nodes": tuple(data["nodes"]), "links": tuple(data["links"])})


def plan_from_json(data: dict[str, Any]) -> Plan:
    primary = _path(data["primary"])
    assert primary is not None
    return Plan(
        sla=data["sla"],
        bandwidth_mbps=data["bandwidth_mbps"],
        primary=primary,
        secondary=_path(data.get("secondary")),
        latency_ms=data["latency_ms"],
        availability=data["availability"],
        demands=dict(data.get("demands", {})),
    )


def _shallow(value: Plan | PathPlan | Allocation) -> dict[str, Any]:
    return {field.name: getattr(value, field.name) for field in fields(value)}


def allocation_to_json(allocation: Allocation) -> dict[str, Any]:
    # shallow, then the address fields as text: asdict() would deep-copy every network first
    data = _shallow(allocation)
    data["p2p_ipv4"] = [str(n) for n in allocation.p2p_ipv4]
    data["p2p_ipv6"] = [str(n) for n in allocation.p2p_ipv6]
    data["route_targets"] = list(allocation.route_targets)
    return data


def cloud_gateway_ip(data: dict[str, Any]) -> str:
    """``Allocation.cloud_gateway_ip`` read straight from the stored JSON (no parsing):
    the first address of the primary /31 is its network address, as stored."""
    return str(data["p2p_ipv4"][0]).split("/", 1)[0]


def allocation_from_json(data: dict[str, Any]) -> Allocation:
    return Allocation(
        slot=data["slot"],
        service_id=data["service_id"],
        vni=data["vni"],
        route_distinguisher=data["route_distinguisher"],
        route_targets=tuple(data["route_targets"]),
        p2p_ipv4=tuple(ipaddress.IPv4Network(n) for n in data["p2p_ipv4"]),
        p2p_ipv6=tuple(ipaddress.IPv6Network(n) for n in data["p2p_ipv6"]),
        provider_asn=data["provider_asn"],
    )


def _addresses(ip: dict[str, str] | None) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    if not ip:
        return ()
    return tuple(addresses.host(ip[key]) for key in ("ipv4Address", "ipv6Address") if ip.get(key))


def connection_request(client_id: str, body: dict[str, Any], *, sla: str | None = None) -> ConnectionRequest:
    """The planner's view of a (validated, camelCase) create or assessment body."""
    ce, pe = body["customerEdge"], body["providerEdge"]
    return ConnectionRequest(
        client_id=client_id,
        ce_primary=_addresses(ce["primaryIpAddress"]),
        pe_primary=_addresses(pe["primaryIpAddress"]),
        ce_secondary=_addresses(ce.get("secondaryIpAddress")),
        pe_secondary=_addresses(pe.get("secondaryIpAddress")),
        bandwidth_mbps=body["guaranteeBandwidth"],
        sla=sla or body.get("sla") or "A",
        protected=bool(body.get("isProtected", False)),
        max_latency_ms=body.get("maxLatency"),
    )


def _ranges(ports: dict[str, Any] | None) -> tuple[tuple[int, int], ...]:
    if not ports:
        return ()
    ranges = [(r["from"], r["to"]) for r in ports.get("ranges") or []]
    ranges += [(p, p) for p in ports.get("ports") or []]
    return tuple(sorted(ranges))


def _networks(items: list[dict[str, str]]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    found = []
    for item in items:
        for key in ("ipv4Address", "ipv6Address"):
            if item.get(key):
                found.append(addresses.prefix(item[key]))
    return tuple(found)


def render_l3nm(row: SessionRecord | SessionRow, inventory: Inventory) -> dict[str, Any]:
    assert row.plan is not None and row.allocation is not None
    request = row.request
    return l3nm.render_l3nm(
        inventory=inventory,
        session_id=row.session_id,
        plan=plan_from_json(row.plan),
        allocation=allocation_from_json(row.allocation),
        ce_addresses=tuple(str(a) for a in _addresses(request["customerEdge"]["primaryIpAddress"])),
        ce_prefixes=tuple(request["customerEdge"].get("prefixes") or ()),
        application_servers=tuple(str(n) for n in _networks(request["applicationServers"])),
        route_protocol=request.get("routeProtocol", "static"),
        customer_asn=request.get("customerAsn"),
        bandwidth_mbps=row.bandwidth_mbps,
    )


def service_spec(row: SessionRecord | SessionRow) -> ServiceSpec:
    assert row.plan is not None and row.allocation is not None
    plan = plan_from_json(row.plan)
    request = row.request
    return ServiceSpec(
        session_id=row.session_id,
        client_id=row.client_id,
        bandwidth_mbps=row.bandwidth_mbps,
        sla=row.sla,
        primary=plan.primary,
        secondary=plan.secondary,
        allocation=allocation_from_json(row.allocation),
        ce_addresses=tuple(str(a) for a in _addresses(request["customerEdge"]["primaryIpAddress"])),
        ce_prefixes=tuple(addresses.prefix(p) for p in request["customerEdge"].get("prefixes") or ()),
        application_servers=_networks(request["applicationServers"]),
        flows=tuple(
            FlowSpec(protocol=f["protocol"], server_ports=_ranges(f.get("serverPorts")), client_ports=_ranges(f.get("clientPorts")))
            for f in request.get("applicationFlows") or ()
        ),
        route_protocol=request.get("routeProtocol", "static"),
        customer_asn=request.get("customerAsn"),
    )
