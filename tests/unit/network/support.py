"""Helpers for the network tests: request builders and small hand-made networks."""

from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from s2cvpn.config import BUNDLED_INVENTORY
from s2cvpn.network import loader
from s2cvpn.network.inventory import Inventory
from s2cvpn.network.plans import ConnectionRequest

TODAY = date(2026, 11, 28)
DEMO_PATH: Path = BUNDLED_INVENTORY


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def request(ce: str | tuple[str, ...] = "198.51.100.10", pe: str | tuple[str, ...] = "203.0.113.1", **kw: Any) -> ConnectionRequest:
    """A request with sensible defaults; addresses as strings."""
    ces = (ce,) if isinstance(ce, str) else ce
    pes = (pe,) if isinstance(pe, str) else pe
    fields: dict[str, Any] = {"client_id": "client-1", "bandwidth_mbps": 100, "sla": "AA"}
    fields.update(kw)
    for key in ("ce_secondary", "pe_secondary"):
        if isinstance(fields.get(key), str):
            fields[key] = (ip(fields[key]),)
    return ConnectionRequest(ce_primary=tuple(ip(a) for a in ces), pe_primary=tuple(ip(a) for a in pes), **fields)


def demo_mapping() -> dict[str, Any]:
    """A fresh, mutable copy of the demo inventory's YAML mapping."""
    with open(DEMO_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


LinkSpec = tuple[str, str, float, float]  # a, b, latency_ms, availability_percent


def small_network(
    links: list[LinkSpec | tuple[str, str, float, float, int] | tuple[str, str, float, float, int, list[str]]],
    *,
    port_mbps: int = 1000,
    sources: tuple[str, ...] = ("pe",),
) -> Inventory:
    """A hand-made inventory: nodes named ``pe*`` are access PEs (attachment ``att-<pe>``,
    CE 198.51.100.<n>), ``cloud*`` are cloud PEs (203.0.113.<n>), others P routers.
    Each link spec is (a, b, latency_ms, availability_percent[, capacity_mbps[, srlgs]])."""
    names = sorted({end for spec in links for end in spec[:2]})
    nodes, attachments, cloud_n = [], [], 0
    for i, name in enumerate(names):
        node: dict[str, Any] = {"name": name, "loopback": f"10.0.0.{i + 1}", "location": "here"}
        if name.startswith("pe"):
            node["role"] = "access-pe"
            attachments.append({
                "id": f"att-{name}", "access_pe": name, "port_capacity_mbps": port_mbps,
                "location": "here", "ce_addresses": [f"198.51.100.{len(attachments) + 1}"],
            })
        elif name.startswith("cloud"):
            cloud_n += 1
            node.update(role="cloud-pe", addresses=[f"203.0.113.{cloud_n}"], cloud={"provider": "x", "region": "r"})
        else:
            node["role"] = "p"
        nodes.append(node)
    link_maps = []
    for spec in links:
        item: dict[str, Any] = {"a": spec[0], "b": spec[1], "latency_ms": spec[2], "availability_percent": spec[3],
                                "capacity_mbps": spec[4] if len(spec) > 4 else 100000}  # type: ignore[misc]
        if len(spec) > 5:
            item["srlgs"] = spec[5]  # type: ignore[misc]
        link_maps.append(item)
    return loader.inventory_from_mapping({
        "provider": {"name": "t", "asn": 64500, "currency": "EUR"},
        "tiers": {
            "A": {"availability_percent": 99.5, "needs_diversity": False},
            "AA": {"availability_percent": 99.9, "needs_diversity": False},
            "AAA": {"availability_percent": 99.99, "needs_diversity": True},
        },
        "pricing": {"protection_factor": 2, "tiers": {t: {"base_monthly": 1, "per_mbps_monthly": 1} for t in ("A", "AA", "AAA")}},
        "locations": {"here": {"city": "Here", "latitude": 0.0, "longitude": 0.0}},
        "nodes": nodes,
        "links": link_maps,
        "attachments": attachments,
    })

