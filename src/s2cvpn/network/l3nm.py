"""Render a planned session as an IETF L3NM document (RFC 9182, ``ietf-l3vpn-ntw``).

This is what a driver for a real controller sends, and what the tests validate against
the YANG modules, so everything here is plain RFC 9182 JSON (RFC 7951 encoding):

* one ``vpn-service`` whose ``vpn-id`` is the allocation's service id, with one VPN instance
  profile carrying the RD and the route target (import and export) for IPv4 and IPv6;
* one ``vpn-node`` per PE involved: the access PE(s) and the cloud PE(s), keyed by name;
* on an access PE, one ``vpn-network-access`` per CE attachment: the CE-PE /31 and /127
  (PE side = first address, CE side = second), the routing towards the CE (static routes
  to the CE prefixes via the CE side of the CE-PE link, or eBGP with ``peer-as`` = customer
  ASN and ``local-as`` = provider ASN), the guaranteed bandwidth both ways (bps), and the
  session's VNI towards the cloud PE loopback(s);
* on a cloud PE, one access towards the cloud with static routes to the application
  servers on the local link, and the same VNI towards the access PE loopback(s).

With protection, the secondary attachment (when it is another CE port) uses the second
CE-PE subnet pair; its static routes get a worse ``preference`` so the primary is used
first. If both paths start on the same port, that port has one access.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from s2cvpn.network.inventory import Inventory
from s2cvpn.network.plans import Allocation, Plan

VPN_COMMON = "ietf-vpn-common"
NTW = "ietf-l3vpn-ntw"
_ADMIN_UP = {"admin-status": {"status": f"{VPN_COMMON}:admin-up"}}
_PREFERENCE = (10, 20)  # static route preference for the primary, secondary access


def render_l3nm(
    *,
    inventory: Inventory,
    session_id: str,
    plan: Plan,
    allocation: Allocation,
    ce_addresses: tuple[str, ...],
    ce_prefixes: tuple[str, ...],
    application_servers: tuple[str, ...],
    route_protocol: str,
    customer_asn: int | None,
    bandwidth_mbps: int,
) -> dict[str, Any]:
    """The ``ietf-l3vpn-ntw:l3vpn-ntw`` document for one planned session.

    ``ce_prefixes`` are the LANs behind the CE; when none are given, the CE's own
    addresses (``ce_addresses``) are routed as host prefixes so the CE stays reachable.
    ``application_servers`` are addresses or prefixes in the cloud.
    """
    if route_protocol not in ("static", "BGP"):
        raise ValueError(f"route_protocol must be 'static' or 'BGP', not {route_protocol!r}")
    if route_protocol == "BGP" and customer_asn is None:
        raise ValueError("BGP routing needs the customer ASN")
    profile = allocation.service_id
    lans = _prefixes(ce_prefixes or ce_addresses)
    servers = _prefixes(application_servers)
    paths = [plan.primary] + ([plan.secondary] if plan.secondary else [])
    nodes: dict[str, dict[str, Any]] = {}
    access_pes = {inventory.attachments[p.attachment_id].access_pe for p in paths}
    cloud_pes = {p.cloud_pe for p in paths}
    seen_ports: set[str] = set()
    for i, path in enumerate(paths):
        if path.attachment_id in seen_ports:
            continue
        seen_ports.add(path.attachment_id)
        attachment = inventory.attachments[path.attachment_id]
        node = nodes.setdefault(attachment.access_pe, _vpn_node(inventory, attachment.access_pe, profile))
        v4, v6 = allocation.p2p_ipv4[i], allocation.p2p_ipv6[i]
        access: dict[str, Any] = {
            "id": f"{allocation.service_id}-{attachment.id}",
            "interface-id": attachment.id,
            "description": (
                f"session {session_id}, {'primary' if i == 0 else 'secondary'} CE "
                f"{', '.join(ce_addresses) or '?'} on attachment {attachment.id}"
            ),
            "vpn-network-access-type": f"{VPN_COMMON}:point-to-point",
            "vpn-instance-profile": profile,
            "status": _ADMIN_UP,
            "connection": _vxlan(inventory, allocation.vni, cloud_pes),
            "ip-connection": {
                "ipv4": _ip_family(str(v4[0]), 31, str(v4[1])),
                "ipv6": _ip_family(str(v6[0]), 127, str(v6[1])),
            },
            "routing-protocols": {
                "routing-protocol": [
                    _static(f"static-{attachment.id}", lans, (str(v4[1]), str(v6[1])), _PREFERENCE[i])
                    if route_protocol == "static"
                    else _bgp(f"bgp-{attachment.id}", customer_asn or 0, allocation.provider_asn,
                              (str(v4[0]), str(v6[0])), (str(v4[1]), str(v6[1])))
                ]
            },
            "service": {
                "pe-to-ce-bandwidth": str(bandwidth_mbps * 1_000_000),  # uint64: a JSON string (RFC 7951)
                "ce-to-pe-bandwidth": str(bandwidth_mbps * 1_000_000),
            },
        }
        node["vpn-network-accesses"]["vpn-network-access"].append(access)
    for name in sorted(cloud_pes):
        node = nodes.setdefault(name, _vpn_node(inventory, name, profile))
        cloud = inventory.nodes[name].cloud
        node["vpn-network-accesses"]["vpn-network-access"].append({
            "id": f"{allocation.service_id}-cloud",
            "description": f"session {session_id}, cloud on-ramp"
            + (f" {cloud.provider}/{cloud.region}" if cloud else ""),
            "vpn-network-access-type": f"{VPN_COMMON}:point-to-point",
            "vpn-instance-profile": profile,
            "status": _ADMIN_UP,
            "connection": _vxlan(inventory, allocation.vni, access_pes),
            "routing-protocols": {
                "routing-protocol": [_static("static-cloud", servers, (f"{NTW}:local-link",) * 2, _PREFERENCE[0])]
            },
            "service": {
                "pe-to-ce-bandwidth": str(bandwidth_mbps * 1_000_000),  # uint64: a JSON string (RFC 7951)
                "ce-to-pe-bandwidth": str(bandwidth_mbps * 1_000_000),
            },
        })
    service = {
        "vpn-id": allocation.service_id,
        "vpn-name": f"s2cvpn-{session_id}",
        "vpn-description": f"CAMARA site-to-cloud VPN session {session_id}, SLA {plan.sla}, {bandwidth_mbps} Mbps",
        "vpn-type": f"{VPN_COMMON}:l3vpn",
        "vpn-service-topology": f"{VPN_COMMON}:any-to-any",
        "status": _ADMIN_UP,
        "vpn-instance-profiles": {"vpn-instance-profile": [_instance_profile(inventory, allocation)]},
        "vpn-nodes": {"vpn-node": list(nodes.values())},
    }
    return {f"{NTW}:l3vpn-ntw": {"vpn-services": {"vpn-service": [service]}}}


def typed_route_value(asn: int, number: int) -> str:
    """RFC 4364 typed RD/RT text as ietf-routing-types wants it: type 0 (2-byte ASN,
    4-byte number) when the ASN fits, else type 2 (4-byte ASN, 2-byte number; the loader
    keeps VNIs below 65536 for such providers)."""
    return f"0:{asn}:{number}" if asn <= 0xFFFF else f"2:{asn}:{number}"


def _instance_profile(inventory: Inventory, allocation: Allocation) -> dict[str, Any]:
    asn = inventory.provider.asn
    targets = [{"route-target": typed_route_value(asn, allocation.vni)}]
    return {
        "profile-id": allocation.service_id,
        "role": f"{VPN_COMMON}:any-to-any-role",
        "local-as": asn,
        "rd": typed_route_value(asn, allocation.vni),
        "address-family": [
            {
                "address-family": f"{VPN_COMMON}:{family}",
                "vpn-targets": {
                    "vpn-target": [{"id": 1, "route-targets": targets, "route-target-type": "both"}]
                },
            }
            for family in ("ipv4", "ipv6")
        ],
    }


def _vpn_node(inventory: Inventory, name: str, profile: str) -> dict[str, Any]:
    node = inventory.nodes[name]
    return {
        "vpn-node-id": name,
        "description": f"{node.role} {name} ({node.location.city})",
        "ne-id": name,
        "local-as": inventory.provider.asn,
        "router-id": str(node.loopback),
        "active-vpn-instance-profiles": {"vpn-instance-profile": [{"profile-id": profile}]},
        "status": _ADMIN_UP,
        "vpn-network-accesses": {"vpn-network-access": []},
    }


def _vxlan(inventory: Inventory, vni: int, peers: set[str]) -> dict[str, Any]:
    return {
        # The CE-PE link is a plain (untagged) Ethernet port; the VNI carries the session
        # across the backbone between the access PE(s) and the cloud PE(s).
        "encapsulation": {"type": f"{VPN_COMMON}:untagged-int"},
        "l2-tunnel-service": {
            "type": f"{NTW}:vxlan",
            "vxlan": {
                "vni-id": vni,
                "peer-ip-address": [str(inventory.nodes[p].loopback) for p in sorted(peers)],
            },
        }
    }


def _ip_family(pe_side: str, prefix_length: int, ce_side: str) -> dict[str, Any]:
    return {
        "local-address": pe_side,
        "prefix-length": prefix_length,
        "address-allocation-type": f"{NTW}:static-address",
        "primary-address": "ce",
        "address": [{"address-id": "ce", "customer-address": ce_side}],
    }


def _prefixes(items: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Addresses or CIDRs -> networks (a bare address becomes a host prefix), deduplicated."""
    out: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
    for item in items:
        net = ipaddress.ip_network(item, strict=False)
        out[str(net)] = net
    return list(out.values())


def _static(
    rid: str, lans: list[ipaddress.IPv4Network | ipaddress.IPv6Network], next_hops: tuple[str, str], preference: int
) -> dict[str, Any]:
    v4 = [{"lan": str(n), "next-hop": next_hops[0], "preference": preference} for n in lans if n.version == 4]
    v6 = [{"lan": str(n), "next-hop": next_hops[1], "preference": preference} for n in lans if n.version == 6]
    prefixes: dict[str, Any] = {}
    if v4:
        prefixes["ipv4-lan-prefixes"] = v4
    if v6:
        prefixes["ipv6-lan-prefixes"] = v6
    return {"id": rid, "type": f"{VPN_COMMON}:static-routing", "static": {"cascaded-lan-prefixes": prefixes}}


def _bgp(rid: str, peer_as: int, local_as: int, pe_side: tuple[str, str], ce_side: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": rid,
        "type": f"{VPN_COMMON}:bgp-routing",
        "bgp": {
            "description": "eBGP to the customer CE",
            "local-as": local_as,
            "peer-as": peer_as,
            "address-family": f"{VPN_COMMON}:dual-stack",
            "local-address": pe_side[0],
            "neighbor": list(ce_side),
            "multihop": 1,
        },
    }
