"""Per-session network resources, derived from a slot number.

Why slots: the storage layer only has to hand out a unique integer in
``[0, pool_size(inventory))`` (one row per live session, freed at the end); everything
else (service id, VNI, RD, route targets, CE-PE subnets) is a pure function of it here,
so two live sessions can never share a resource and nothing else needs to be stored.

Layout: slot ``s`` owns VNI ``vni_base + s`` and the CE-PE subnets number ``2*s`` (primary)
and ``2*s + 1`` (secondary) of the pools: /31s in ``p2p_ipv4``, /127s in ``p2p_ipv6``.
The first address of each subnet is the PE side, the second the CE side.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from s2cvpn.network.inventory import Inventory, Pools, Provider
from s2cvpn.network.plans import Allocation

if TYPE_CHECKING:  # only for typing: the loader passes its problem collector in
    from s2cvpn.network.loader import Problems

MAX_PATHS = 2  # primary and secondary (1+1 protection)
MAX_VNI = 0xFFFFFF  # 24-bit VXLAN network identifier


def pool_size(inventory: Inventory) -> int:
    """How many sessions can hold network resources at once."""
    return inventory.pools.size


def allocation_for(inventory: Inventory, slot: int, paths: int) -> Allocation:
    """The resources of ``slot`` for a session with ``paths`` (1 or 2) CE-PE links."""
    pools = inventory.pools
    if not 0 <= slot < pools.size:
        raise ValueError(f"slot {slot} outside the pool [0, {pools.size})")
    if not 1 <= paths <= MAX_PATHS:
        raise ValueError(f"paths must be 1 or {MAX_PATHS}, not {paths}")
    vni = pools.vni_base + slot
    asn = inventory.provider.asn
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for path in range(paths):
        index = slot * MAX_PATHS + path
        v4.append(ipaddress.IPv4Network((int(pools.p2p_ipv4.network_address) + 2 * index, 31)))
        v6.append(ipaddress.IPv6Network((int(pools.p2p_ipv6.network_address) + 2 * index, 127)))
    return Allocation(
        slot=slot,
        service_id=f"s2c-{vni}",
        vni=vni,
        route_distinguisher=f"{asn}:{vni}",
        route_targets=(f"target:{asn}:{vni}",),  # one RT, used for import and export
        p2p_ipv4=tuple(v4),
        p2p_ipv6=tuple(v6),
        provider_asn=pools.bgp_asn or asn,
    )


def pools_from_mapping(p: Problems, raw: Any, provider: Provider | None) -> Pools | None:
    """``pools: {vni_base, size, p2p_ipv4, p2p_ipv6, bgp_asn}``, every key optional."""
    if raw is None:
        return Pools()
    if not p.mapping("pools", raw, {"vni_base", "size", "p2p_ipv4", "p2p_ipv6", "bgp_asn"}):
        return None
    before = len(p.items)
    default = Pools()
    vni_base = p.positive_int("pools", raw, "vni_base") if "vni_base" in raw else default.vni_base
    size = p.positive_int("pools", raw, "size") if "size" in raw else default.size
    bgp_asn = p.asn("pools", raw, "bgp_asn") if raw.get("bgp_asn") is not None else None
    nets: list[Any] = []
    for key, version in (("p2p_ipv4", 4), ("p2p_ipv6", 6)):
        try:
            net = ipaddress.ip_network(str(raw.get(key, getattr(default, key))), strict=True)
        except ValueError as exc:
            p.add("pools", f"{key}: {exc}")
            continue
        if net.version != version:
            p.add("pools", f"{key}: {net} is not an IPv{version} network")
        elif size is not None and net.num_addresses < size * MAX_PATHS * 2:
            p.add("pools", f"{key}: {net} is too small for {size} slots x {MAX_PATHS} paths")
        nets.append(net)
    if vni_base is not None and size is not None:
        if vni_base + size - 1 > MAX_VNI:
            p.add("pools", f"VNIs {vni_base}..{vni_base + size - 1} exceed {MAX_VNI}")
        if provider and provider.asn > 0xFFFF and vni_base + size - 1 > 0xFFFF:
            p.add("pools", f"with a 4-byte ASN ({provider.asn}) the VNIs must stay below 65536 (RD/RT type 2)")
    if len(p.items) != before or vni_base is None or size is None or len(nets) != 2:
        return None
    return Pools(vni_base=vni_base, size=size, p2p_ipv4=nets[0], p2p_ipv6=nets[1], bgp_asn=bgp_asn)
