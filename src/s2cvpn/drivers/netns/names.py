"""Every name the netns driver gives a kernel object, in one place.

Why names carry everything: ``remove`` and ``list_services`` must work after a crash with
no memory, so a session's objects are found from their names alone. Namespaces are
``{prefix}-{kind}-...`` (no length limit); interface names must fit Linux's 15 characters,
so they use the short prefix plus numbers (link index, session slot, path index).

    {prefix}-r-{node}                  router (PE or P) namespace, loopback /32 on lo
    {prefix}-ce-{attachment}           CE router namespace of an attachment
    {prefix}-{slot}-{session}-a{p}     session VRF at the access PE of path p
    {prefix}-{slot}-{session}-c{p}     session L2 hand-off at the cloud PE of path p
    {prefix}-{slot}-{session}-e        the session's customer cloud (application servers)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IFNAMSIZ = 15  # usable characters of a Linux interface name
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,3}$")
SESSION_RE = re.compile(r"^[A-Za-z0-9_.:]+(-[A-Za-z0-9_.:]+)*$")
ROLES = ("a0", "a1", "c0", "c1", "e")
# Underlay: link /31s from LINK_NET, per-session tunnel endpoints (4 per slot) from TUNNEL_NET.
LINK_NET = ipaddress.IPv4Network("198.18.0.0/16")
TUNNEL_NET = ipaddress.IPv4Network("198.19.0.0/16")
MAX_SLOT = TUNNEL_NET.num_addresses // 4 - 1
VXLAN_PORT = 4789  # path p uses VXLAN_PORT + p
# Overlay between the access VRF and the customer cloud, private to one session.
OVERLAY_V4 = "169.254.{n}.{h}"
OVERLAY_V6 = "fd5c:2c00:0:{n}::{h}"


def ifname(name: str) -> str:
    if len(name) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ} characters")
    return name


@dataclass(frozen=True)
class Names:
    prefix: str = "s2c"

    def __post_init__(self) -> None:
        if not PREFIX_RE.match(self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: 2-4 lowercase letters/digits, starting with a letter")

    # ---- lab ----
    def router(self, node: str) -> str:
        return f"{self.prefix}-r-{_safe(node)}"

    def ce(self, attachment_id: str) -> str:
        return f"{self.prefix}-ce-{_safe(attachment_id)}"

    def link_if(self, index: int, side: str) -> str:
        return ifname(f"{self.prefix}l{index}{side}")

    def is_lab_ns(self, ns: str) -> bool:
        return ns.startswith(f"{self.prefix}-")

    # ---- sessions ----
    def session_ns(self, slot: int, session_id: str, role: str) -> str:
        check_session_id(session_id)
        return f"{self.prefix}-{slot}-{session_id}-{role}"

    def parse_session_ns(self, ns: str) -> tuple[int, str, str] | None:
        """(slot, session id, role) of a session namespace name, or None."""
        match = re.match(rf"^{self.prefix}-(\d+)-(.+)-({'|'.join(ROLES)})$", ns)
        if not match:
            return None
        return int(match.group(1)), match.group(2), match.group(3)

    def vxlan(self, slot: int, path: int) -> str:
        return ifname(f"{self.prefix}x{slot}p{path}")

    def ce_side(self, slot: int, path: int) -> str:
        """The session's CE-PE link, CE end (in the CE namespace: must be unique there)."""
        return ifname(f"{self.prefix}v{slot}p{path}")

    def pe_side(self, path: int) -> str:
        """The session's CE-PE link, PE end (in the session VRF)."""
        return ifname(f"{self.prefix}ce{path}")

    def bridge(self, path: int) -> str:
        return ifname(f"{self.prefix}b{path}")

    def cloud_side(self, path: int) -> str:
        return ifname(f"{self.prefix}k{path}")

    def server_side(self, path: int) -> str:
        return ifname(f"{self.prefix}e{path}")


def check_session_id(session_id: str) -> str:
    if not SESSION_RE.match(session_id) or len(session_id) > 100:
        raise ValueError(f"session id {session_id!r} cannot name a namespace")
    return session_id


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def tunnel_endpoints(slot: int, path: int) -> tuple[str, str]:
    """(access-PE end, cloud-PE end) underlay addresses of one path's VXLAN tunnel."""
    if not 0 <= slot <= MAX_SLOT:
        raise ValueError(f"slot {slot} exceeds the netns lab's limit {MAX_SLOT}")
    base = int(TUNNEL_NET.network_address) + 4 * slot + 2 * path
    return str(ipaddress.IPv4Address(base)), str(ipaddress.IPv4Address(base + 1))


MAC_ROLES = {"pe": 1, "ce": 2, "vxlan": 3, "server": 4}


def mac(slot: int, path: int, role: str) -> str:
    """A fixed, locally administered MAC for a session device: neighbours can be seeded
    at build time instead of waiting for ARP/ND (see vpn.py)."""
    return f"02:5c:{(slot >> 16) & 0xFF:02x}:{(slot >> 8) & 0xFF:02x}:{slot & 0xFF:02x}:{path * 16 + MAC_ROLES[role]:02x}"


def link_addresses(index: int) -> tuple[str, str]:
    """(a side, b side) addresses of backbone link number ``index`` (a /31)."""
    base = int(LINK_NET.network_address) + 2 * index
    if base + 1 > int(LINK_NET.broadcast_address):
        raise ValueError(f"too many links for {LINK_NET}")
    return str(ipaddress.IPv4Address(base)), str(ipaddress.IPv4Address(base + 1))


def overlay(path: int, version: int, side: str) -> str:
    """Overlay address of path ``path``: side "pe" (access VRF) or "cloud" (server namespace)."""
    host = 1 if side == "pe" else 2
    template = OVERLAY_V4 if version == 4 else OVERLAY_V6
    return template.format(n=100 + path, h=host)
