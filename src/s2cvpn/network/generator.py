"""Synthetic inventories of any size, for benchmarks and tests.

The shape follows a typical provider network so the planner is measured on realistic
graphs, not random ones:

* metros, each with two P routers (planes 1 and 2) joined by a metro link;
* a backbone ring through all metros on plane 1, plus, on plane 2, links from each metro
  to its two nearest metros (the mesh); links between the same two metros share a duct
  SRLG, like parallel fibres do;
* an express core: about sqrt(metros) core metros, each linked (plane 1) to its three
  nearest core metros, so that large networks keep paths of tens of hops, not hundreds,
  as real ones do;
* access PEs in open rings ("horseshoes") of up to 6, from a metro's P1 to its P2, so every
  access PE is dual-homed; each carries one or two attachments (CE ports of 1 or 10 Gbps);
* cloud PEs spread over the metros, each dual-homed to both P routers, grouped into a few
  cloud providers and regions;
* latencies from great-circle distance (fibre ~200 km/ms, route factor 1.3), a few
  planned upgrades, a few attachments restricted to one customer.

Everything derives from ``random.Random(seed)`` and counters, so the same (nodes, seed)
always gives the same inventory. The result is the YAML-able mapping ``loader`` reads
(``loader.inventory_from_mapping`` loads it without a YAML round trip).
"""

from __future__ import annotations

import ipaddress
import math
import random
from datetime import date, timedelta
from typing import Any

ACCESS_RING_SIZE = 6
CLOUD_PROVIDERS = ("azurite", "nimbus", "stratus", "cirrus")
FIBRE_KM_PER_MS = 200.0
ROUTE_FACTOR = 1.3
_LOOPBACKS = ipaddress.IPv4Network("100.96.0.0/11")
_CE_V4 = ipaddress.IPv4Network("10.0.0.0/8")
_CE_V6 = ipaddress.IPv6Network("2001:db8:100::/48")
_CLOUD_V4 = ipaddress.IPv4Network("172.16.0.0/12")
_CLOUD_V6 = ipaddress.IPv6Network("2001:db8:200::/48")


def generate_inventory(nodes: int, seed: int, *, upgrades_from: date = date(2027, 1, 1)) -> dict[str, Any]:
    """An inventory mapping with about ``nodes`` routers (at least 10), deterministic in
    ``seed``. Planned upgrades fall within a year after ``upgrades_from``."""
    if nodes < 10:
        raise ValueError("the generator needs at least 10 nodes")
    rng = random.Random(seed)
    n_cloud = max(2, round(nodes * 0.02))
    n_metro = max(2, round(nodes * 0.05))
    n_access = nodes - n_cloud - 2 * n_metro
    if n_access < n_metro:
        n_metro = max(2, (nodes - n_cloud) // 3)
        n_access = nodes - n_cloud - 2 * n_metro
    builder = _Builder(rng)
    metros = [(rng.uniform(36.0, 60.0), rng.uniform(-10.0, 30.0)) for _ in range(n_metro)]
    for m, (lat, lon) in enumerate(metros):
        builder.locations[f"m{m}"] = {"city": f"city-{m}", "latitude": round(lat, 4), "longitude": round(lon, 4)}
        for plane in (1, 2):
            builder.node(f"p-{m}-{plane}", "p", f"m{m}")
        builder.link(f"p-{m}-1", f"p-{m}-2", 100000, 0.1, 99.99, [f"metro-{m}"])
    _backbone(builder, metros)
    _access(builder, rng, n_metro, n_access)
    _clouds(builder, rng, n_metro, n_cloud)
    _upgrades(builder, rng, upgrades_from)
    return {
        "version": 1,
        "provider": {"name": f"Synthetic network {nodes}/{seed}", "asn": 64500, "currency": "EUR"},
        "tiers": {
            "A": {"availability_percent": 99.5, "needs_diversity": False},
            "AA": {"availability_percent": 99.9, "needs_diversity": False},
            "AAA": {"availability_percent": 99.99, "needs_diversity": True},
        },
        "pricing": {
            "protection_factor": 1.8,
            "tiers": {
                "A": {"base_monthly": 200.0, "per_mbps_monthly": 1.5},
                "AA": {"base_monthly": 350.0, "per_mbps_monthly": 2.0},
                "AAA": {"base_monthly": 600.0, "per_mbps_monthly": 2.75},
            },
        },
        "pools": {"vni_base": 10000, "size": 65536, "p2p_ipv4": "100.64.0.0/14", "p2p_ipv6": "2001:db8:ffff::/48"},
        "locations": builder.locations,
        "nodes": builder.nodes,
        "links": builder.links,
        "attachments": builder.attachments,
    }


class _Builder:
    """Accumulates the mapping's lists and hands out unique addresses."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.locations: dict[str, dict[str, Any]] = {}
        self.nodes: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.attachments: list[dict[str, Any]] = []
        self.node_location: dict[str, str] = {}

    def node(self, name: str, role: str, location: str, **extra: Any) -> None:
        loopback = _LOOPBACKS.network_address + len(self.nodes) + 1
        self.nodes.append({"name": name, "role": role, "loopback": str(loopback), "location": location, **extra})
        self.node_location[name] = location

    def link(self, a: str, b: str, capacity_mbps: int, latency_ms: float, availability_percent: float,
             srlgs: list[str] | None = None) -> dict[str, Any]:
        link: dict[str, Any] = {
            "id": f"{a}--{b}", "a": a, "b": b, "capacity_mbps": capacity_mbps,
            "latency_ms": round(latency_ms, 3), "availability_percent": availability_percent,
        }
        if srlgs:
            link["srlgs"] = srlgs
        self.links.append(link)
        return link

    def distance_latency_ms(self, a: str, b: str) -> float:
        la, lb = self.locations[self.node_location[a]], self.locations[self.node_location[b]]
        km = _great_circle_km(la["latitude"], la["longitude"], lb["latitude"], lb["longitude"])
        return km * ROUTE_FACTOR / FIBRE_KM_PER_MS + 0.05


def _backbone(b: _Builder, metros: list[tuple[float, float]]) -> None:
    n = len(metros)
    clat = sum(lat for lat, _ in metros) / n
    clon = sum(lon for _, lon in metros) / n
    order = sorted(range(n), key=lambda m: math.atan2(metros[m][0] - clat, metros[m][1] - clon))
    for i in range(n if n > 2 else 1):
        x, y = order[i], order[(i + 1) % n]
        a, z = f"p-{x}-1", f"p-{y}-1"
        b.link(a, z, 400000, b.distance_latency_ms(a, z), round(b.rng.uniform(99.99, 99.999), 4),
               [f"duct-{min(x, y)}-{max(x, y)}"])
    _nearest_links(b, metros, range(n), 2, plane=2, capacity_mbps=100000, prefix="duct")
    stride = max(3, round(math.sqrt(n)))
    if n >= 2 * stride:
        _nearest_links(b, metros, range(0, n, stride), 3, plane=1, capacity_mbps=400000, prefix="express")


def _nearest_links(b: _Builder, metros: list[tuple[float, float]], members: range, k: int, *,
                   plane: int, capacity_mbps: int, prefix: str) -> None:
    """Link each member metro to its ``k`` nearest members (once per pair)."""
    done: set[tuple[int, int]] = set()
    for x in members:
        nearest = sorted((m for m in members if m != x), key=lambda m: _sq(metros[x], metros[m]))[:k]
        for y in nearest:
            key = (min(x, y), max(x, y))
            if key in done:
                continue
            done.add(key)
            a, z = f"p-{key[0]}-{plane}", f"p-{key[1]}-{plane}"
            b.link(a, z, capacity_mbps, b.distance_latency_ms(a, z), round(b.rng.uniform(99.99, 99.999), 4),
                   [f"{prefix}-{key[0]}-{key[1]}"])


def _access(b: _Builder, rng: random.Random, n_metro: int, n_access: int) -> None:
    per_metro: list[list[str]] = [[] for _ in range(n_metro)]
    for i in range(n_access):
        m = i % n_metro
        name = f"pe-{m}-{len(per_metro[m]) + 1}"
        per_metro[m].append(name)
        b.node(name, "access-pe", f"m{m}")
        for _ in range(1 if rng.random() < 0.6 else 2):
            k = len(b.attachments)
            attachment: dict[str, Any] = {
                "id": f"att-{k}",
                "access_pe": name,
                "port_capacity_mbps": 10000 if rng.random() < 0.2 else 1000,
                "location": f"m{m}",
                "ce_addresses": [str(_CE_V4.network_address + k + 1), str(_CE_V6.network_address + k + 1)],
            }
            if k % 97 == 96:
                attachment["customers"] = [f"tenant-{k % 7}"]
            b.attachments.append(attachment)
    for m, pes in enumerate(per_metro):
        for start in range(0, len(pes), ACCESS_RING_SIZE):
            ring = [f"p-{m}-1"] + pes[start:start + ACCESS_RING_SIZE] + [f"p-{m}-2"]
            capacity = rng.choice((40000, 100000))
            for x, y in zip(ring, ring[1:]):
                b.link(x, y, capacity, rng.uniform(0.05, 0.4), 99.99)


def _clouds(b: _Builder, rng: random.Random, n_metro: int, n_cloud: int) -> None:
    for i in range(n_cloud):
        m = (i * n_metro) // n_cloud
        provider = CLOUD_PROVIDERS[i % len(CLOUD_PROVIDERS)]
        name = f"cloud-{i}"
        b.node(
            name, "cloud-pe", f"m{m}",
            addresses=[str(_CLOUD_V4.network_address + i + 1), str(_CLOUD_V6.network_address + i + 1)],
            cloud={"provider": provider, "region": f"region-{m}"},
        )
        for plane in (1, 2):
            b.link(name, f"p-{m}-{plane}", 100000, rng.uniform(0.05, 0.3), 99.99)


def _upgrades(b: _Builder, rng: random.Random, start: date) -> None:
    for link in rng.sample(b.links, max(1, len(b.links) // 100)):
        link["upgrades"] = [{
            "capacity_mbps": link["capacity_mbps"] * 4,
            "available_from": (start + timedelta(days=rng.randrange(365))).isoformat(),
        }]


def _sq(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - b[0]) ** 2 + ((a[1] - b[1]) * math.cos(math.radians((a[0] + b[0]) / 2))) ** 2


def _great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))
