"""One session's VPN: the objects it is made of, and how they are built and removed.

Per path p (0 primary, 1 secondary of a protected session):

    CE ns ==veth(p2p /31,/127)== a{p} VRF ns --VXLAN(VNI, port 4789+p)--> c{p} ns (bridge) == e ns
                                (tc, nft, FRR)   pinned along the plan    L2 hand-off     servers

* Isolation: every session has its own namespaces (a VRF at the access PE, an L2 hand-off
  at the cloud PE, its customer cloud), joined only by its own VXLAN VNI; identical CE
  prefixes and server addresses of two sessions never meet.
* Path pinning: the tunnel of path p runs between two per-session /32 endpoints (from the
  session slot) put on the PEs' lo, with host routes installed at every node of the
  planned path, link by link: the encapsulated traffic follows the plan, not the IGP.
* Failover (protected): both tunnels are up and the VRF and the cloud route over both as
  one weighted multipath route (primary weight 100, secondary 1), with
  ``fib_multipath_use_neigh`` and ARP timers of ~100 ms on the tunnel links. When the
  primary path breaks anywhere, its overlay neighbour goes FAILED after a few unanswered
  probes and the kernel moves the traffic onto the secondary: no daemon, no control loop.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from s2cvpn.drivers.base import ServiceSpec
from s2cvpn.drivers.netns import bgp, filters, runner, shaping, topology
from s2cvpn.drivers.netns.names import VXLAN_PORT, Names, mac, overlay, tunnel_endpoints
from s2cvpn.errors import DriverRejected, DriverUnavailable
from s2cvpn.network.inventory import Inventory

WEIGHTS = (100, 1)
NEIGH = "base_reachable 200 delay_probe 100 retrans 100 ucast_probes 3 app_probes 0"
VRF_SYSCTLS = (
    "net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.fib_multipath_use_neigh=1 "
    "net.ipv4.conf.all.rp_filter=0 net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
)
SERVER_SYSCTLS = (
    "net.ipv4.fib_multipath_use_neigh=1 net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
)
ALIAS_TAG = "s2c"


@dataclass(frozen=True)
class PathLayout:
    index: int
    nodes: tuple[str, ...]
    links: tuple[str, ...]
    attachment: str
    access_ns: str
    cloud_ns: str
    ce_ns: str
    ce_link: bool  # this path has its own CE-PE link (primary, or another CE/PE)
    endpoints: tuple[str, str]


@dataclass(frozen=True)
class Layout:
    spec: ServiceSpec
    slot: int
    paths: tuple[PathLayout, ...]
    server_ns: str

    @property
    def access_namespaces(self) -> list[str]:
        return sorted({p.access_ns for p in self.paths})

    @property
    def namespaces(self) -> list[str]:
        return self.access_namespaces + [p.cloud_ns for p in self.paths] + [self.server_ns]

    def ce_paths(self) -> list[PathLayout]:
        return [p for p in self.paths if p.ce_link]

    def routers(self) -> list[str]:
        return sorted({node for p in self.paths for node in p.nodes})


def layout(spec: ServiceSpec, names: Names) -> Layout:
    slot = spec.allocation.slot
    sid = spec.session_id
    plans = [spec.primary] + ([spec.secondary] if spec.secondary else [])
    out = []
    for index, plan in enumerate(plans):
        if len(plan.nodes) < 2 or len(plan.links) != len(plan.nodes) - 1:
            raise DriverRejected(f"path {index} of {sid}: {len(plan.nodes)} nodes, {len(plan.links)} links")
        same_pe = index > 0 and plan.nodes[0] == plans[0].nodes[0]
        access_ns = names.session_ns(slot, sid, "a0" if index == 0 or same_pe else "a1")
        ce_link = index == 0 or not (same_pe and plan.attachment_id == plans[0].attachment_id)
        if ce_link and index >= len(spec.allocation.p2p_ipv4):
            raise DriverRejected(f"{sid}: no CE-PE subnet allocated for path {index}")
        try:
            endpoints = tunnel_endpoints(slot, index)
        except ValueError as exc:
            raise DriverRejected(str(exc)) from exc
        out.append(
            PathLayout(
                index=index,
                nodes=plan.nodes,
                links=plan.links,
                attachment=plan.attachment_id,
                access_ns=access_ns,
                cloud_ns=names.session_ns(slot, sid, f"c{index}"),
                ce_ns=names.ce(plan.attachment_id),
                ce_link=ce_link,
                endpoints=endpoints,
            )
        )
    return Layout(spec, slot, tuple(out), names.session_ns(slot, sid, "e"))


def digest(spec: ServiceSpec) -> str:
    """What a carried session is: identical digests mean apply has nothing to do."""
    fields = (spec.session_id, spec.bandwidth_mbps, spec.flows, _structure(spec))
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]


def structure_digest(spec: ServiceSpec) -> str:
    """Everything but bandwidth and flows: equal means ``modify`` can work in place."""
    return hashlib.sha256(repr(_structure(spec)).encode()).hexdigest()[:16]


def _structure(spec: ServiceSpec) -> tuple[object, ...]:
    paths = [(p.nodes, p.links, p.attachment_id) for p in (spec.primary, spec.secondary) if p]
    return (
        paths,
        spec.allocation,
        spec.ce_addresses,
        spec.ce_prefixes,
        spec.application_servers,
        spec.route_protocol,
        spec.customer_asn,
    )


# ---------------------------------------------------------------------------------------
def build(inventory: Inventory, names: Names, lay: Layout, run_dir: Path) -> None:
    """Create every object of the session (the namespaces must not exist yet)."""
    spec = lay.spec
    missing = topology.present(inventory, names)
    needed = {names.router(n) for n in lay.routers()} | {p.ce_ns for p in lay.paths}
    if needed & set(missing):
        raise DriverUnavailable(f"lab is not up: missing {sorted(needed & set(missing))}")
    links = topology.lab_links(inventory)
    for p in lay.paths:
        for link_id in p.links:
            if link_id not in links:
                raise DriverRejected(f"{spec.session_id}: unknown link {link_id}")
    # 1. namespaces and veths, in one root batch
    root = [f"netns add {ns}" for ns in dict.fromkeys(lay.namespaces)]
    for p in lay.paths:
        if p.ce_link:
            root.append(
                f"link add {names.pe_side(p.index)} address {mac(lay.slot, p.index, 'pe')} netns {p.access_ns} "
                f"type veth peer name {names.ce_side(lay.slot, p.index)} address {mac(lay.slot, p.index, 'ce')} "
                f"netns {p.ce_ns}"
            )
        root.append(
            f"link add {names.cloud_side(p.index)} netns {p.cloud_ns} type veth "
            f"peer name {names.server_side(p.index)} address {mac(lay.slot, p.index, 'server')} netns {lay.server_ns}"
        )
    runner.run(runner.ip_batch(root))
    # 2. tunnels and pinned underlay routes, one batch per router on the paths
    runner.run_many([runner.ip_batch(lines, names.router(node)) for node, lines in _router_lines(inventory, names, lay, links).items()])
    # 3. the session namespaces, the CE side, filters, shaping, BGP
    jobs = [_vrf_job(names, lay, ns) for ns in lay.access_namespaces]
    jobs += [_cloud_job(names, lay, p) for p in lay.paths]
    jobs.append(_server_job(names, lay))
    jobs += [_ce_job(names, lay, p) for p in lay.ce_paths()]
    if spec.route_protocol == "BGP":
        jobs += [bgp.start(ns, speaker, run_dir) for ns, speaker in _speakers(names, lay)]
    runner.run_many(jobs)
    # 4. completion mark: what is built, and which routers hold its routes
    mark = f"{ALIAS_TAG}:{digest(spec)}:{structure_digest(spec)}:{','.join(lay.routers())}"
    if len(mark) > 250:
        mark = f"{ALIAS_TAG}:{digest(spec)}:{structure_digest(spec)}:*"
    runner.run(runner.ip_batch([f"link set lo alias {mark}"], lay.paths[0].access_ns))


def read_mark(ns: str) -> tuple[str, str, list[str] | None] | None:
    """(digest, structure digest, routers or None for all) from a built session's VRF."""
    if not runner.netns_exists(ns):
        return None
    text = runner.output(["ip", "-n", ns, "-o", "link", "show", "lo"], check=False)
    if " alias " not in text:
        return None
    alias = text.split(" alias ", 1)[1].split()[0]
    parts = alias.split(":", 3)
    if len(parts) != 4 or parts[0] != ALIAS_TAG:
        return None
    return parts[1], parts[2], None if parts[3] == "*" else parts[3].split(",")


def reshape(names: Names, lay: Layout) -> None:
    """Apply bandwidth and flows to a built session in place (tc change, nft replace)."""
    jobs = [runner.ns_script(ns, _shaping_and_filter(names, lay, ns, "change")) for ns in lay.access_namespaces]
    runner.run_many(jobs)
    mark = read_mark(lay.paths[0].access_ns)
    routers = ",".join(mark[2]) if mark and mark[2] is not None else "*"
    alias = f"{ALIAS_TAG}:{digest(lay.spec)}:{structure_digest(lay.spec)}:{routers}"
    runner.run(runner.ip_batch([f"link set lo alias {alias}"], lay.paths[0].access_ns))


def _router_lines(inventory: Inventory, names: Names, lay: Layout, links: dict[str, topology.LabLink]) -> dict[str, list[str]]:
    vni = lay.spec.allocation.vni
    out: dict[str, list[str]] = {}
    for p in lay.paths:
        near, far = p.endpoints
        vx = names.vxlan(lay.slot, p.index)
        for i, node in enumerate(p.nodes):
            lines = out.setdefault(node, [])
            if i < len(p.nodes) - 1:  # toward the cloud end
                _dev, _addr, peer = topology.link_end(names, links[p.links[i]], node)
                lines.append(f"route replace {far}/32 via {peer}")
            if i > 0:  # toward the access end
                _dev, _addr, peer = topology.link_end(names, links[p.links[i - 1]], node)
                lines.append(f"route replace {near}/32 via {peer}")
        ends = ((p.nodes[0], near, far, p.access_ns, f" address {mac(lay.slot, p.index, 'vxlan')}"),
                (p.nodes[-1], far, near, p.cloud_ns, ""))  # the cloud end is a bridge port: its own MAC
        for node, local, remote, ns, address in ends:
            out[node] += [
                f"addr replace {local}/32 dev lo",
                f"link add {vx}{address} mtu 1500 type vxlan id {vni} local {local} remote {remote} "
                f"dstport {VXLAN_PORT + p.index}",
                f"link set {vx} netns {ns}",
            ]
    return out


def _host(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The address a LAN or server prefix is represented by: its first usable host."""
    if net.num_addresses <= 2:
        return str(net.network_address)
    return str(net.network_address + 1)


def _seed(dev: str, lladdr: str, *addresses: str) -> list[str]:
    """Neighbour entries known in advance (the peer's MAC is fixed), left STALE: the first
    packet goes out at once, and the kernel still confirms them with unicast probes, so a
    dead peer turns FAILED (which failover relies on). Without them the first IPv6
    packets wait for the peer to join its solicited-node group, up to a second."""
    return [f"neigh replace {a} lladdr {lladdr} dev {dev} nud stale" for a in addresses]


def _multipath(hops: list[tuple[str, str, int]]) -> str:
    if len(hops) == 1:
        via, dev, _w = hops[0]
        return f"via {via} dev {dev}"
    return " ".join(f"nexthop via {via} dev {dev} weight {w}" for via, dev, w in hops)


def _vrf_job(names: Names, lay: Layout, ns: str) -> runner.Job:
    spec = lay.spec
    mine = [p for p in lay.paths if p.access_ns == ns]
    lines = ["link set lo up"]
    for p in mine:
        vx = names.vxlan(lay.slot, p.index)
        lines += [
            f"addr add {overlay(p.index, 4, 'pe')}/30 dev {vx}",
            f"addr add {overlay(p.index, 6, 'pe')}/64 dev {vx} nodad",
            f"link set {vx} up",
            f"ntable change name arp_cache dev {vx} {NEIGH}",
            f"ntable change name ndisc_cache dev {vx} {NEIGH}",
        ]
        lines += _seed(vx, mac(lay.slot, p.index, "server"), overlay(p.index, 4, "cloud"), overlay(p.index, 6, "cloud"))
    ce_paths = [p for p in mine if p.ce_link]
    for p in ce_paths:
        dev = names.pe_side(p.index)
        lines += [
            f"addr add {spec.allocation.p2p_ipv4[p.index][0]}/31 dev {dev}",
            f"addr add {spec.allocation.p2p_ipv6[p.index][0]}/127 dev {dev} nodad",
            f"link set {dev} up",
        ]
        alloc4, alloc6 = spec.allocation.p2p_ipv4[p.index], spec.allocation.p2p_ipv6[p.index]
        lines += _seed(dev, mac(lay.slot, p.index, "ce"), str(alloc4[1]), str(alloc6[1]))
    for server in spec.application_servers:
        hops = [(overlay(p.index, server.version, "cloud"), names.vxlan(lay.slot, p.index), WEIGHTS[p.index]) for p in mine]
        lines.append(f"route replace {server} {_multipath(hops)}")
    if spec.route_protocol != "BGP":
        for prefix in spec.ce_prefixes:
            alloc = spec.allocation.p2p_ipv4 if prefix.version == 4 else spec.allocation.p2p_ipv6
            hops = [(str(alloc[p.index][1]), names.pe_side(p.index), WEIGHTS[p.index]) for p in ce_paths]
            if hops:
                lines.append(f"route replace {prefix} {_multipath(hops)}")
    devices = [names.vxlan(lay.slot, p.index) for p in mine] + [names.pe_side(p.index) for p in ce_paths]
    script = _script(VRF_SYSCTLS, devices, lines) + _shaping_and_filter(names, lay, ns, "replace")
    return runner.ns_script(ns, script)


def _shaping_and_filter(names: Names, lay: Layout, ns: str, action: str) -> str:
    mine = [p for p in lay.paths if p.access_ns == ns]
    devs = [names.vxlan(lay.slot, p.index) for p in mine] + [names.pe_side(p.index) for p in mine if p.ce_link]
    tc = "\n".join(shaping.tbf_line(action, dev, lay.spec.bandwidth_mbps) for dev in devs)
    script = f"tc -batch - <<'EOF'\n{tc}\nEOF\n"
    ruleset = filters.ruleset(lay.spec.flows, f"{names.prefix}ce*")
    if lay.spec.flows or action == "change":
        script += f"nft -f - <<'EOF'\n{ruleset}EOF\n"
    return script


def _cloud_job(names: Names, lay: Layout, p: PathLayout) -> runner.Job:
    br, vx, side = names.bridge(p.index), names.vxlan(lay.slot, p.index), names.cloud_side(p.index)
    lines = [
        "link set lo up",
        f"link add {br} type bridge mcast_snooping 0",
        f"link set {vx} master {br}",
        f"link set {side} master {br}",
        f"link set {vx} up",
        f"link set {side} up",
        f"link set {br} up",
    ]
    return runner.ip_batch(lines, p.cloud_ns)


def _server_job(names: Names, lay: Layout) -> runner.Job:
    lines = ["link set lo up"]
    for server in lay.spec.application_servers:
        bits = server.max_prefixlen
        lines.append(f"addr add {_host(server)}/{bits} dev lo")
        if server.prefixlen < bits:
            lines.append(f"route add local {server} dev lo")
    for p in lay.paths:
        dev = names.server_side(p.index)
        lines += [
            f"addr add {overlay(p.index, 4, 'cloud')}/30 dev {dev}",
            f"addr add {overlay(p.index, 6, 'cloud')}/64 dev {dev} nodad",
            f"link set {dev} up",
            f"ntable change name arp_cache dev {dev} {NEIGH}",
            f"ntable change name ndisc_cache dev {dev} {NEIGH}",
        ]
        lines += _seed(dev, mac(lay.slot, p.index, "vxlan"), overlay(p.index, 4, "pe"), overlay(p.index, 6, "pe"))
    for version in (4, 6):
        hops = [(overlay(p.index, version, "pe"), names.server_side(p.index), WEIGHTS[p.index]) for p in lay.paths]
        lines.append(f"route replace {'::/0' if version == 6 else '0.0.0.0/0'} {_multipath(hops)}")
    devices = [names.server_side(p.index) for p in lay.paths]
    return runner.ns_script(lay.server_ns, _script(SERVER_SYSCTLS, devices, lines))


def _script(sysctls: str, devices: list[str], ip_lines: list[str]) -> str:
    """sysctls, then no IPv6 DAD on the session's devices (they arrived in the namespace
    before its defaults were set; a tentative link-local address cannot send ND
    solicitations; and addresses join their solicited-node group only after a random
    delay of up to rtr_solicit_delay, 1 s by default), then one ip batch."""
    dad = " ".join(f"net.ipv6.conf.{dev}.accept_dad=0 net.ipv6.conf.{dev}.router_solicitation_delay=0" for dev in devices)
    return f"sysctl -qw {sysctls} {dad}\nip -batch - <<'EOF'\n" + "\n".join(ip_lines) + "\nEOF\n"


def lan_hosts(spec: ServiceSpec) -> dict[int, str]:
    """version -> the CE LAN address probes and routes use as source."""
    out: dict[int, str] = {}
    for prefix in spec.ce_prefixes:
        out.setdefault(prefix.version, _host(prefix))
    return out


def server_hosts(spec: ServiceSpec) -> list[str]:
    return [_host(server) for server in spec.application_servers]


def _ce_job(names: Names, lay: Layout, p: PathLayout) -> runner.Job:
    spec = lay.spec
    dev = names.ce_side(lay.slot, p.index)
    pe4, ce4 = spec.allocation.p2p_ipv4[p.index][0], spec.allocation.p2p_ipv4[p.index][1]
    pe6, ce6 = spec.allocation.p2p_ipv6[p.index][0], spec.allocation.p2p_ipv6[p.index][1]
    lines = [f"addr add {ce4}/31 dev {dev}", f"addr add {ce6}/127 dev {dev} nodad", f"link set {dev} up"]
    lines += _seed(dev, mac(lay.slot, p.index, "pe"), str(pe4), str(pe6))
    lan = lan_hosts(spec)
    for version, host in lan.items():
        lines.append(f"addr replace {host}/128 dev {dev} nodad" if version == 6 else f"addr replace {host}/32 dev {dev}")
    if spec.route_protocol != "BGP":
        for server in spec.application_servers:
            via = pe4 if server.version == 4 else pe6
            src = f" src {lan[server.version]}" if server.version in lan else ""
            lines.append(f"route replace {server} via {via} dev {dev}{src}")
    return runner.ns_script(p.ce_ns, f"sysctl -qw net.ipv6.conf.{dev}.accept_dad=0 net.ipv6.conf.{dev}.router_solicitation_delay=0\n" + _script("", [], lines).split("\n", 1)[1])


def _speakers(names: Names, lay: Layout) -> list[tuple[str, bgp.Speaker]]:
    spec = lay.spec
    if spec.customer_asn is None:
        raise DriverRejected(f"{spec.session_id}: BGP needs the customer ASN")
    provider_asn = spec.allocation.provider_asn
    lan = lan_hosts(spec)
    out = []
    for ns in lay.access_namespaces:
        ce_paths = [p for p in lay.ce_paths() if p.access_ns == ns]
        neighbors = []
        for p in ce_paths:
            neighbors.append(bgp.Neighbor(str(spec.allocation.p2p_ipv4[p.index][1]), spec.customer_asn))
            neighbors.append(bgp.Neighbor(str(spec.allocation.p2p_ipv6[p.index][1]), spec.customer_asn))
        role = ns.rsplit("-", 1)[1]
        out.append(
            (
                ns,
                bgp.Speaker(
                    name=f"{spec.session_id}.{role}",
                    asn=provider_asn,
                    router_id=str(spec.allocation.p2p_ipv4[ce_paths[0].index][0]) if ce_paths else "192.0.0.1",
                    neighbors=tuple(neighbors),
                    networks=tuple(str(s) for s in spec.application_servers),
                ),
            )
        )
    for p in lay.ce_paths():
        out.append(
            (
                p.ce_ns,
                bgp.Speaker(
                    name=f"{spec.session_id}.ce{p.index}",
                    asn=spec.customer_asn,
                    router_id=str(spec.allocation.p2p_ipv4[p.index][1]),
                    neighbors=(
                        bgp.Neighbor(str(spec.allocation.p2p_ipv4[p.index][0]), provider_asn),
                        bgp.Neighbor(str(spec.allocation.p2p_ipv6[p.index][0]), provider_asn),
                    ),
                    networks=tuple(str(prefix) for prefix in spec.ce_prefixes),
                    src_v4=lan.get(4),
                    src_v6=lan.get(6),
                ),
            )
        )
    return out


# ---------------------------------------------------------------------------------------
def session_namespaces(names: Names, session_id: str) -> dict[str, int]:
    """Namespaces of ``session_id`` that exist -> the slot named in them."""
    out = {}
    for ns in runner.list_netns():
        parsed = names.parse_session_ns(ns)
        if parsed and parsed[1] == session_id:
            out[ns] = parsed[0]
    return out


def destroy(inventory: Inventory, names: Names, session_id: str, run_dir: Path) -> None:
    """Delete everything ``session_id`` made, found by name. Idempotent."""
    found = session_namespaces(names, session_id)
    for instance in bgp.instances(run_dir, session_id):
        bgp.stop(run_dir, instance)
    if not found:
        return
    routers: list[str] | None = None
    for ns in found:
        if ns.endswith("-a0"):
            mark = read_mark(ns)
            routers = mark[2] if mark else None
    topology.kill_processes(list(found))
    nodes = routers if routers is not None else list(inventory.nodes)
    lines = []
    for slot in set(found.values()):
        for path in (0, 1):
            lines.append(f"link del {names.vxlan(slot, path)}")
            for address in tunnel_endpoints(slot, path):
                lines += [f"route del {address}/32", f"addr del {address}/32 dev lo"]
    existing = set(runner.list_netns())
    jobs = [runner.ip_batch(lines, names.router(n), force=True) for n in nodes if names.router(n) in existing]
    # Namespace deletion is asynchronous in the kernel: delete the devices first, so their
    # names, VNIs and the CE end of each veth are free the moment remove() returns.
    for ns, slot in found.items():
        devices = [names.vxlan(slot, p) for p in (0, 1)]
        devices += [names.pe_side(p) for p in (0, 1)] + [names.cloud_side(p) for p in (0, 1)]
        devices += [names.bridge(p) for p in (0, 1)]
        jobs.append(runner.ip_batch([f"link del {dev}" for dev in devices], ns, force=True))
    runner.run_many(jobs)
    runner.run(runner.ip_batch([f"netns del {ns}" for ns in found], force=True))
