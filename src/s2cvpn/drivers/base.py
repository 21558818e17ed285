"""The one interface every network backend implements.

A driver receives a fully planned ``ServiceSpec`` (paths, pools, L3NM document) and makes
the network hold it. Every call is idempotent: applying what exists, or removing what is
gone, succeeds and changes nothing, so a repeated job does no harm. Drivers are blocking
(the netns driver enters namespaces, which is per-thread); the service calls them through
``call_driver``, from a worker thread unless the driver says its calls never wait
(``blocks``). Failures are raised as ``errors.DriverError`` subclasses only.
"""

from __future__ import annotations

import asyncio
import ipaddress
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from s2cvpn.network.inventory import Inventory
from s2cvpn.network.plans import Allocation, PathPlan


@dataclass(frozen=True)
class FlowSpec:
    protocol: Literal["TCP", "UDP", "ANY"]
    server_ports: tuple[tuple[int, int], ...] = ()  # inclusive ranges; () = any port
    client_ports: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a driver needs to build one session's VPN, and nothing it must look up.

    The session's IETF L3NM document is not part of it: the API and the CLI render it when
    asked (``network.l3nm``). It was rendered here for every provisioning, and no driver
    read it; a driver that sends L3NM would render it from this spec and its inventory."""

    session_id: str
    client_id: str
    bandwidth_mbps: int
    sla: str
    primary: PathPlan
    secondary: PathPlan | None
    allocation: Allocation
    ce_addresses: tuple[str, ...]  # the CE's primary identity (IPv4 and/or IPv6)
    ce_prefixes: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]  # LANs behind the CE
    application_servers: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    flows: tuple[FlowSpec, ...] = ()  # () = all traffic
    route_protocol: Literal["static", "BGP"] = "static"
    customer_asn: int | None = None


@dataclass(frozen=True)
class Measurement:
    latency_ms: float | None
    packet_loss_rate: float | None  # percent
    throughput_mbps: float | None
    measured: bool  # False: planned values, the backend cannot measure


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


class NetworkDriver(ABC):
    """Subclasses implement all six methods; a missing one fails at instantiation."""

    name: str

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    @property
    def blocks(self) -> bool:
        """Whether a call may wait on the outside world (commands, namespaces, a controller).
        A driver whose calls take microseconds says False and is called on the event loop:
        a hop to a worker thread and back costs more than such a call (bench/HISTORY.md, fourth round)."""
        return True

    @abstractmethod
    def apply(self, spec: ServiceSpec) -> None:
        """Make the network carry ``spec``. Idempotent."""

    @abstractmethod
    def modify(self, spec: ServiceSpec) -> None:
        """Change a carried session to ``spec`` (bandwidth, SLA, paths) without tearing it down."""

    @abstractmethod
    def remove(self, session_id: str) -> None:
        """Remove every object the session made. Idempotent: a missing session is fine."""

    @abstractmethod
    def measure(self, session_id: str) -> Measurement:
        """Latency, loss and throughput of a carried session."""

    @abstractmethod
    def list_services(self) -> set[str]:
        """Session ids the network really holds, for reconciliation."""

    @abstractmethod
    def health(self) -> Health:
        """Whether the backend can take changes now."""


async def call_driver(driver: NetworkDriver, method: str, *args: Any) -> Any:
    """``driver.<method>(*args)``: in a worker thread when the driver blocks."""
    call = getattr(driver, method)
    if driver.blocks:
        return await asyncio.to_thread(call, *args)
    return call(*args)
