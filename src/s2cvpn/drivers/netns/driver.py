"""``NetnsDriver``: the NetworkDriver interface over the netns lab (see ``vpn.py``)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from s2cvpn.drivers.base import Health, Measurement, NetworkDriver, ServiceSpec
from s2cvpn.drivers.netns import bgp, probes, runner, topology, vpn
from s2cvpn.drivers.netns.names import Names, check_session_id
from s2cvpn.errors import DriverRejected, DriverUnavailable
from s2cvpn.network.inventory import Inventory


class NetnsDriver(NetworkDriver):
    """A real Linux data plane: every router, CE and customer cloud is a namespace.

    Each call is idempotent and safe to repeat after a crash: ``apply`` compares the
    completion mark left in the session's VRF with the spec and either does nothing,
    retunes in place, or deletes the session's leftovers by name and builds it again.
    Calls for one session are serialised; different sessions run concurrently.
    """

    name = "netns"

    def __init__(self, inventory: Inventory, *, state_dir: Path | None = None, prefix: str = "s2c") -> None:
        super().__init__(inventory)
        self.names = Names(prefix)
        self.state_dir = state_dir or Path(f"/run/{prefix}")
        # FRR drops to user frr: its files live under /run, never in a private state_dir
        self.run_dir = Path("/run") / prefix / "frr"
        self.probe_dir = self.state_dir / "probes"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ---- lab ----
    def lab_up(self, progress: topology.Progress | None = None) -> None:
        self._require_root()
        topology.build(self.inventory, self.names, progress)

    def lab_down(self) -> list[str]:
        self._require_root()
        removed = topology.destroy(self.names)
        for instance in self.run_dir.glob("*") if self.run_dir.is_dir() else []:
            bgp.stop(self.run_dir, instance.name)
        shutil.rmtree(self.run_dir.parent, ignore_errors=True)
        shutil.rmtree(self.probe_dir, ignore_errors=True)
        return removed

    # ---- NetworkDriver ----
    def apply(self, spec: ServiceSpec) -> None:
        self._require_root()
        lay = self._layout(spec)
        with self._lock(spec.session_id):
            mark = vpn.read_mark(lay.paths[0].access_ns)
            if mark and mark[0] == vpn.digest(spec) and self._complete(lay):
                return
            self._record_probe_target(lay)
            if mark and mark[1] == vpn.structure_digest(spec) and self._complete(lay):
                vpn.reshape(self.names, lay)
                return
            vpn.destroy(self.inventory, self.names, spec.session_id, self.run_dir)
            try:
                vpn.build(self.inventory, self.names, lay, self.run_dir)
            except BaseException:
                vpn.destroy(self.inventory, self.names, spec.session_id, self.run_dir)
                raise

    def modify(self, spec: ServiceSpec) -> None:
        """Bandwidth and flows change in place (tc change, nft table swap); a new path,
        new addresses or another routing protocol rebuild the session."""
        self.apply(spec)

    def remove(self, session_id: str) -> None:
        self._require_root()
        check_session_id(session_id)
        with self._lock(session_id):
            vpn.destroy(self.inventory, self.names, session_id, self.run_dir)
            (self.probe_dir / f"{session_id}.json").unlink(missing_ok=True)

    def measure(self, session_id: str) -> Measurement:
        self._require_root()
        check_session_id(session_id)
        if not vpn.session_namespaces(self.names, session_id):
            raise DriverRejected(f"session {session_id} is not in the network")
        try:
            target = json.loads((self.probe_dir / f"{session_id}.json").read_text())
        except (OSError, ValueError) as exc:
            raise DriverRejected(f"session {session_id}: no probe target recorded (apply it again)") from exc
        before, started = probes.byte_counters(target["vrf"], target["devices"]), probes.now()
        results = []
        for server in target["servers"][:2]:
            source = target["lan"].get("6" if ":" in server else "4")
            results.append(probes.ping(target["ce"], server, source=source))
        after, ended = probes.byte_counters(target["vrf"], target["devices"]), probes.now()
        rtts = [rtt for rtt, _loss in results if rtt is not None]
        losses = [loss for _rtt, loss in results]
        # ping gives round trips; the API's latency is one-way (as planned and as
        # maxLatency bounds it): half the round trip, the path being symmetric
        return Measurement(
            latency_ms=round(sum(rtts) / len(rtts) / 2, 4) if rtts else None,
            packet_loss_rate=round(sum(losses) / len(losses), 2) if losses else None,
            throughput_mbps=round(probes.throughput_mbps(before, after, ended - started), 3),
            measured=True,
        )

    def list_services(self) -> set[str]:
        out = set()
        for ns in runner.list_netns():
            parsed = self.names.parse_session_ns(ns)
            if parsed:
                out.add(parsed[1])
        return out

    def health(self) -> Health:
        if os.geteuid() != 0:
            return Health(False, "netns driver needs root")
        missing = topology.present(self.inventory, self.names)
        if missing:
            return Health(False, f"lab not up: {len(missing)} namespaces missing (run `s2cvpn lab up`)")
        return Health(True, f"lab up: {len(self.inventory.nodes)} routers, {len(self.inventory.attachments)} CEs")

    # ---- helpers ----
    def _layout(self, spec: ServiceSpec) -> vpn.Layout:
        try:
            return vpn.layout(spec, self.names)
        except ValueError as exc:
            raise DriverRejected(str(exc)) from exc

    def _record_probe_target(self, lay: vpn.Layout) -> None:
        """Where measure() probes from and to: survives a restart of the service."""
        first = lay.paths[0]
        target = {
            "vrf": first.access_ns,
            "ce": first.ce_ns,
            "devices": [self.names.pe_side(p.index) for p in lay.paths if p.ce_link and p.access_ns == first.access_ns],
            "servers": vpn.server_hosts(lay.spec),
            "lan": {str(v): host for v, host in vpn.lan_hosts(lay.spec).items()},
        }
        self.probe_dir.mkdir(parents=True, exist_ok=True)
        path = self.probe_dir / f"{lay.spec.session_id}.json"
        path.write_text(json.dumps(target))

    def _complete(self, lay: vpn.Layout) -> bool:
        existing = set(runner.list_netns())
        return all(ns in existing for ns in lay.namespaces)

    def _lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    @staticmethod
    def _require_root() -> None:
        if os.geteuid() != 0:
            raise DriverUnavailable("the netns driver needs root (network namespaces)")
