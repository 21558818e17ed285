"""The provider network as the service knows it: frozen, validated, loaded once.

Field names follow ``shared/NETWORK.md``. Capacities are Mbps, latencies ms, availabilities
fractions (0.999, not 99.9). Resource ids for capacity accounting are link ids and
``port:<attachment id>`` for a CE port (see ``Inventory.capacity_of``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Literal, TypeVar

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Role = Literal["access-pe", "p", "cloud-pe"]
TIER_NAMES = ("A", "AA", "AAA")
T = TypeVar("T")


def port_resource(attachment_id: str) -> str:
    return f"port:{attachment_id}"


@dataclass(frozen=True)
class Location:
    city: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Provider:
    name: str
    asn: int
    currency: str


@dataclass(frozen=True)
class Tier:
    name: str  # A, AA, AAA
    availability_target: float  # fraction, e.g. 0.999
    needs_diversity: bool


@dataclass(frozen=True)
class TierPrice:
    base_monthly: float
    per_mbps_monthly: float


@dataclass(frozen=True)
class Pricing:
    tiers: dict[str, TierPrice]
    protection_factor: float  # multiplies the rent of a protected (1+1) session


@dataclass(frozen=True)
class Cloud:
    provider: str
    region: str


@dataclass(frozen=True)
class Node:
    name: str
    role: Role
    loopback: ipaddress.IPv4Address
    location: Location
    addresses: tuple[IPAddress, ...] = ()  # cloud-pe only: the providerEdge addresses it answers to
    cloud: Cloud | None = None  # cloud-pe only


@dataclass(frozen=True)
class Upgrade:
    capacity_mbps: int
    available_from: date


@dataclass(frozen=True)
class Link:
    id: str
    a: str
    b: str
    capacity_mbps: int
    latency_ms: float
    availability: float
    srlgs: frozenset[str] = frozenset()
    upgrades: tuple[Upgrade, ...] = ()

    def capacity_on(self, day: date) -> int:
        """Capacity in force on ``day``: the latest upgrade available by then, or the base."""
        capacity = self.capacity_mbps
        for upgrade in sorted(self.upgrades, key=lambda u: u.available_from):
            if upgrade.available_from <= day:
                capacity = upgrade.capacity_mbps
        return capacity


@dataclass(frozen=True)
class Attachment:
    """A pre-deployed physical link from a customer's CE router to an access PE."""

    id: str
    access_pe: str
    port_capacity_mbps: int
    location: Location
    ce_addresses: tuple[IPAddress, ...]  # IPv4 and/or IPv6 identities of the CE
    customers: frozenset[str] | None = None  # client ids allowed; None = any customer


@dataclass(frozen=True)
class Pools:
    """Where per-session network resources come from (see ``network/pools.py``)."""

    vni_base: int = 10000
    size: int = 4096  # how many sessions can hold resources at once
    p2p_ipv4: ipaddress.IPv4Network = ipaddress.IPv4Network("100.64.0.0/16")
    p2p_ipv6: ipaddress.IPv6Network = ipaddress.IPv6Network("2001:db8:ffff::/48")
    bgp_asn: int | None = None  # provider ASN the CE peers with; default: provider.asn


@dataclass(frozen=True)
class Inventory:
    provider: Provider
    tiers: dict[str, Tier]
    pricing: Pricing
    nodes: dict[str, Node]
    links: dict[str, Link]
    attachments: dict[str, Attachment]
    pools: Pools = field(default_factory=Pools)
    # Derived lookup structures (graph, address indexes), built once per inventory by
    # ``cached``. Living on the instance ties their lifetime to it: no id() reuse risk.
    _derived: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def cached(self, key: str, build: Callable[[Inventory], T]) -> T:
        """Return the structure ``build(self)``, building it only on first use.

        The inventory is immutable, so anything derived from it stays valid for its whole
        life; the planner and resolver use this to precompute their indexes once.
        """
        try:
            return self._derived[key]  # type: ignore[no-any-return]
        except KeyError:
            value = build(self)
            self._derived[key] = value
            return value

    def capacity_of(self, resource_id: str, day: date) -> int:
        """Capacity (Mbps) of a link id or ``port:<attachment id>`` on ``day``."""
        if resource_id.startswith("port:"):
            return self.attachments[resource_id[5:]].port_capacity_mbps
        return self.links[resource_id].capacity_on(day)
