"""``ModelDriver``: the inventory is the network (the embedded default).

Nothing is configured anywhere: a session is "carried" once applied, and measurements are
the planned values, flagged ``measured=False`` so nobody mistakes them for probes.

``delay_seconds`` makes every change (apply, modify, remove) take that long, like a slow
network or controller: fault tests use it to stop a worker in the middle of one. The
"network" is this process's memory, so each replica holds what it applied itself.
"""

from __future__ import annotations

import threading
import time

from s2cvpn.drivers.base import Health, Measurement, NetworkDriver, ServiceSpec
from s2cvpn.errors import DriverRejected
from s2cvpn.network.inventory import Inventory


class ModelDriver(NetworkDriver):
    name = "model"

    def __init__(self, inventory: Inventory, *, delay_seconds: float = 0.0) -> None:
        super().__init__(inventory)
        self._services: dict[str, ServiceSpec] = {}
        self._lock = threading.Lock()
        self.delay_seconds = delay_seconds

    @property
    def blocks(self) -> bool:
        return self.delay_seconds > 0  # memory only, unless it plays a slow network

    def _slow_network(self) -> None:
        if self.delay_seconds > 0:
            time.sleep(self.delay_seconds)  # blocking on purpose: such a driver runs in a worker thread

    def apply(self, spec: ServiceSpec) -> None:
        self._check(spec)
        self._slow_network()
        with self._lock:
            self._services[spec.session_id] = spec

    def modify(self, spec: ServiceSpec) -> None:
        self._check(spec)
        self._slow_network()
        with self._lock:
            self._services[spec.session_id] = spec

    def remove(self, session_id: str) -> None:
        self._slow_network()
        with self._lock:
            self._services.pop(session_id, None)

    def measure(self, session_id: str) -> Measurement:
        with self._lock:
            spec = self._services.get(session_id)
        if spec is None:
            raise DriverRejected(f"session {session_id} is not in the network")
        return Measurement(
            latency_ms=spec.primary.latency_ms,
            packet_loss_rate=0.0,
            throughput_mbps=float(spec.bandwidth_mbps),
            measured=False,
        )

    def list_services(self) -> set[str]:
        with self._lock:
            return set(self._services)

    def health(self) -> Health:
        return Health(True, f"model of {len(self.inventory.nodes)} nodes, {len(self._services)} sessions")

    def spec_of(self, session_id: str) -> ServiceSpec | None:
        """The spec a session was last applied with (for tests and the reconciler)."""
        with self._lock:
            return self._services.get(session_id)

    def _check(self, spec: ServiceSpec) -> None:
        """Reject what a real network would: paths over links or nodes it does not have."""
        for path in (spec.primary, spec.secondary):
            if path is None:
                continue
            unknown = [n for n in path.nodes if n not in self.inventory.nodes]
            unknown += [link for link in path.links if link not in self.inventory.links]
            if unknown:
                raise DriverRejected(f"session {spec.session_id}: unknown {', '.join(unknown)}")
