"""nftables ruleset for a session's applicationFlows, installed in its access VRF.

Why in the VRF namespace: the session's traffic, and only it, is forwarded there, so one
``inet`` table with a forward chain filters both IPv4 and IPv6 and disappears with the
namespace. Traffic from the CE is dropped unless a flow matches; replies come back through
conntrack. ICMP echo is always let through: it is the OAM the driver measures with.
"""

from __future__ import annotations

from s2cvpn.drivers.base import FlowSpec

TABLE = "s2c"


def _ports(ranges: tuple[tuple[int, int], ...]) -> str:
    items = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
    return "{ " + ", ".join(items) + " }"


def flow_rule(flow: FlowSpec, ce_ifaces: str) -> str:
    if flow.protocol == "ANY" and not flow.server_ports and not flow.client_ports:
        return f"iifname {ce_ifaces} accept"
    proto = {"TCP": "tcp", "UDP": "udp", "ANY": "{ tcp, udp }"}[flow.protocol]
    parts = [f"iifname {ce_ifaces}", f"meta l4proto {proto}"]
    if flow.server_ports:
        parts.append(f"th dport {_ports(flow.server_ports)}")
    if flow.client_ports:
        parts.append(f"th sport {_ports(flow.client_ports)}")
    return " ".join(parts + ["accept"])


def ruleset(flows: tuple[FlowSpec, ...], ce_glob: str) -> str:
    """An ``nft -f`` script replacing the table atomically; flows=() removes the filter."""
    out = [f"table inet {TABLE} {{}}", f"delete table inet {TABLE}"]
    if not flows:
        return "\n".join(out) + "\n"
    ce_ifaces = f'"{ce_glob}"'
    out += [
        f"table inet {TABLE} {{",
        "  chain fw {",
        "    type filter hook forward priority 0; policy drop;",
        "    ct state established,related accept",
        f"    iifname {ce_ifaces} icmp type echo-request accept",
        f"    iifname {ce_ifaces} icmpv6 type echo-request accept",
        "    meta l4proto { icmp, ipv6-icmp } ct state related accept",
    ]
    out += [f"    {flow_rule(flow, ce_ifaces)}" for flow in flows]
    out += ["  }", "}"]
    return "\n".join(out) + "\n"
