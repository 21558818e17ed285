"""What the planner is asked and what it answers: plain values shared by the service,
the storage layer and the drivers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from s2cvpn.network.inventory import Attachment, IPAddress, Node


@dataclass(frozen=True)
class ConnectionRequest:
    """The connection a consumer asks for, already validated by the API layer."""

    client_id: str
    ce_primary: tuple[IPAddress, ...]  # the CE's IPv4 and/or IPv6 identity
    pe_primary: tuple[IPAddress, ...]
    bandwidth_mbps: int
    sla: str  # A | AA | AAA
    ce_secondary: tuple[IPAddress, ...] = ()
    pe_secondary: tuple[IPAddress, ...] = ()
    protected: bool = False
    max_latency_ms: int | None = None


@dataclass(frozen=True)
class Endpoints:
    """Where a request lands in the inventory."""

    attachment: Attachment
    cloud_pe: Node
    secondary_attachment: Attachment | None = None  # the secondary CE, when it resolves elsewhere
    secondary_cloud_pe: Node | None = None


@dataclass(frozen=True)
class PathPlan:
    nodes: tuple[str, ...]  # access PE ... cloud PE
    links: tuple[str, ...]  # backbone link ids, in order
    latency_ms: float
    availability: float
    attachment_id: str  # the CE port this path starts on
    cloud_pe: str


@dataclass(frozen=True)
class Plan:
    sla: str
    bandwidth_mbps: int
    primary: PathPlan
    secondary: PathPlan | None
    latency_ms: float  # of the primary path
    availability: float  # of the whole service (parallel paths when protected)
    demands: dict[str, int] = field(default_factory=dict)  # resource id -> Mbps to reserve


@dataclass(frozen=True)
class Allocation:
    """Network resources drawn from the pools for one session (see ``network/pools.py``)."""

    slot: int
    service_id: str  # the VPN service id in the network, also the session's resourceGroupId
    vni: int
    route_distinguisher: str
    route_targets: tuple[str, ...]
    p2p_ipv4: tuple[ipaddress.IPv4Network, ...]  # CE-PE /31 per path (primary, secondary)
    p2p_ipv6: tuple[ipaddress.IPv6Network, ...]  # CE-PE /127 per path
    provider_asn: int

    @property
    def cloud_gateway_ip(self) -> str:
        """The PE side of the primary CE-PE link: what the CE routes to."""
        return str(self.p2p_ipv4[0][0])
