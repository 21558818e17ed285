"""The lab: an Inventory built as namespaces, veth links and static underlay routes.

Why static underlay routes and not FRR/OSPF: the routes are computed once from the
inventory (shortest paths by latency, networkx) and installed with one ``ip -batch`` per
router, so a 10-router lab is up in well under a second and is deterministic; an IGP would
add daemons per router and seconds of convergence, and gives nothing here because
sessions do not follow the IGP anyway: each session pins its tunnel along its planned path
(see ``vpn.py``). Link latency cannot be emulated (no netem in this kernel); capacity is
(tbf on both ends of every link below 10 Gbit/s).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

from s2cvpn.drivers.netns import runner, shaping
from s2cvpn.drivers.netns.names import Names, link_addresses
from s2cvpn.network.inventory import Inventory

Progress = Callable[[str, int, int], None]  # (step, done, total)
ROUTER_SYSCTLS = "net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.conf.all.rp_filter=0"


@dataclass(frozen=True)
class LabLink:
    index: int
    link_id: str
    a: str
    b: str
    a_addr: str
    b_addr: str


def lab_links(inventory: Inventory) -> dict[str, LabLink]:
    """Backbone links numbered in id order: the number names their interfaces and /31."""
    out = {}
    for index, link_id in enumerate(sorted(inventory.links)):
        link = inventory.links[link_id]
        a_addr, b_addr = link_addresses(index)
        out[link_id] = LabLink(index, link_id, link.a, link.b, a_addr, b_addr)
    return out


def link_end(names: Names, link: LabLink, node: str) -> tuple[str, str, str]:
    """(interface on ``node``, its address, the peer's address) for one end of ``link``."""
    if node == link.a:
        return names.link_if(link.index, "a"), link.a_addr, link.b_addr
    return names.link_if(link.index, "b"), link.b_addr, link.a_addr


def build(inventory: Inventory, names: Names, progress: Progress | None = None) -> None:
    """Create the lab. Idempotent: an existing lab is torn down first."""
    report = progress or (lambda step, done, total: None)
    destroy(names)
    links = lab_links(inventory)
    routers = [names.router(node) for node in inventory.nodes]
    ces = [names.ce(att) for att in inventory.attachments]
    report("namespaces and links", 0, 3)
    root = [f"netns add {ns}" for ns in routers + ces]
    for link in links.values():
        root.append(
            f"link add {names.link_if(link.index, 'a')} netns {names.router(link.a)} type veth "
            f"peer name {names.link_if(link.index, 'b')} netns {names.router(link.b)}"
        )
    runner.run(runner.ip_batch(root))
    report("routers", 1, 3)
    routes = underlay_routes(inventory, links)
    jobs = []
    for node_name, node in inventory.nodes.items():
        ns = names.router(node_name)
        lines = ["link set lo up", f"addr add {node.loopback}/32 dev lo"]
        lines += [f"addr add {addr}/{addr.max_prefixlen} dev lo" for addr in node.addresses]
        tc_lines = []
        for link in links.values():
            if node_name not in (link.a, link.b):
                continue
            dev, addr, _peer = link_end(names, link, node_name)
            lines += [f"addr add {addr}/31 dev {dev}", f"link set {dev} up"]
            capacity = inventory.links[link.link_id].capacity_mbps
            if capacity < shaping.UNSHAPED_MBPS:
                tc_lines.append(shaping.tbf_line("add", dev, capacity))
        lines += [f"route add {dst}/32 via {via}" for dst, via in routes.get(node_name, {}).items()]
        jobs.append(runner.ip_batch(lines, ns))
        script = f"sysctl -qw {ROUTER_SYSCTLS}\n"
        if tc_lines:
            script += "tc -batch - <<'EOF'\n" + "\n".join(tc_lines) + "\nEOF\n"
        jobs.append(runner.ns_script(ns, script))
    for att_id, att in inventory.attachments.items():
        ns = names.ce(att_id)
        lines = ["link set lo up"] + [f"addr add {a}/{a.max_prefixlen} dev lo" for a in att.ce_addresses]
        jobs.append(runner.ip_batch(lines, ns))
        jobs.append(runner.ns_script(ns, f"sysctl -qw {ROUTER_SYSCTLS}\n"))
    # ip -batch jobs first, then the sysctl/tc scripts (tc needs the links up)
    runner.run_many([j for j in jobs if j.argv[0] == "ip" and j.argv[1] == "-n"])
    report("sysctl and shaping", 2, 3)
    runner.run_many([j for j in jobs if j.argv[1] == "netns"])
    report("done", 3, 3)


def underlay_routes(inventory: Inventory, links: dict[str, LabLink]) -> dict[str, dict[str, str]]:
    """node -> {other node's loopback: next-hop address}, along latency-shortest paths."""
    graph = nx.Graph()
    graph.add_nodes_from(inventory.nodes)
    for link_id, link in inventory.links.items():
        old = graph.get_edge_data(link.a, link.b)
        if old is None or link.latency_ms < old["latency"]:
            graph.add_edge(link.a, link.b, latency=link.latency_ms, link=link_id)
    routes: dict[str, dict[str, str]] = {}
    for source, paths in nx.all_pairs_dijkstra_path(graph, weight="latency"):
        table = routes.setdefault(source, {})
        for target, path in paths.items():
            if len(path) < 2:
                continue
            first = links[graph.edges[path[0], path[1]]["link"]]
            peer = first.b_addr if first.a == source else first.a_addr
            table[str(inventory.nodes[target].loopback)] = peer
    return routes


def destroy(names: Names) -> list[str]:
    """Kill every process in, and delete, every namespace carrying the prefix."""
    doomed = [ns for ns in runner.list_netns() if names.is_lab_ns(ns)]
    kill_processes(doomed)
    if doomed:
        runner.run(runner.ip_batch([f"netns del {ns}" for ns in doomed], force=True))
    return doomed


def kill_processes(namespaces: list[str]) -> None:
    pids = runner.netns_pids(namespaces)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2.0
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        if pids:
            time.sleep(0.02)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False
    finally:
        try:
            os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            pass


def present(inventory: Inventory, names: Names) -> list[str]:
    """Router/CE namespaces of ``inventory`` that are missing (empty: the lab is up)."""
    wanted = [names.router(n) for n in inventory.nodes] + [names.ce(a) for a in inventory.attachments]
    existing = set(runner.list_netns())
    return [ns for ns in wanted if ns not in existing]


def status(names: Names) -> dict[str, list[str]]:
    """Lab namespaces by kind: routers, ces, sessions (ns names)."""
    out: dict[str, list[str]] = {"routers": [], "ces": [], "sessions": [], "other": []}
    for ns in runner.list_netns():
        if not names.is_lab_ns(ns):
            continue
        if ns.startswith(f"{names.prefix}-r-"):
            out["routers"].append(ns)
        elif ns.startswith(f"{names.prefix}-ce-"):
            out["ces"].append(ns)
        elif names.parse_session_ns(ns):
            out["sessions"].append(ns)
        else:
            out["other"].append(ns)
    return out
