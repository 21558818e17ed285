"""FRR (zebra + bgpd) per BGP speaker: one on the CE side and one in the session VRF.

Why one FRR instance per namespace rather than ``zebra -n`` VRFs: zebra -n adopts every
namespace in /run/netns as a VRF (the CEs too, and every other session), whereas an
instance inside the session's own namespace sees only that session and is stopped by
killing the processes of that namespace. Timers are short (keepalive 1 s, hold 3 s,
connect retry 1 s) so a session is Established about a second after start.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from s2cvpn.drivers.netns import runner

FRR_BIN = Path("/usr/lib/frr")
DAEMONS = ("zebra", "bgpd")


@dataclass(frozen=True)
class Neighbor:
    address: str
    remote_asn: int


@dataclass(frozen=True)
class Speaker:
    """One BGP speaker: its ASN, router id, neighbors, prefixes it originates, and the
    source addresses its routes should use (CE side, so probes leave from the LAN)."""

    name: str  # hostname, also the instance directory name
    asn: int
    router_id: str
    neighbors: tuple[Neighbor, ...]
    networks: tuple[str, ...]
    src_v4: str | None = None
    src_v6: str | None = None


def config(speaker: Speaker, directory: Path) -> str:
    lines = ["frr defaults traditional", f"hostname {speaker.name}", f"log file {directory}/frr.log"]
    for family, src in (("ip", speaker.src_v4), ("ipv6", speaker.src_v6)):
        if src:
            tag = "4" if family == "ip" else "6"
            lines += [f"route-map s2c-src{tag} permit 10", f" set src {src}", "exit"]
            lines.append(f"{family} protocol bgp route-map s2c-src{tag}")
    lines += [
        f"router bgp {speaker.asn}",
        f" bgp router-id {speaker.router_id}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        " no bgp default ipv4-unicast",
        " timers bgp 1 3",
    ]
    for n in speaker.neighbors:
        lines += [f" neighbor {n.address} remote-as {n.remote_asn}", f" neighbor {n.address} timers connect 1"]
    for version, family in ((4, "ipv4"), (6, "ipv6")):
        nets = [net for net in speaker.networks if (":" in net) == (version == 6)]
        peers = [n for n in speaker.neighbors if (":" in n.address) == (version == 6)]
        if not peers:
            continue
        lines.append(f" address-family {family} unicast")
        lines += [f"  network {net}" for net in nets]
        lines += [f"  neighbor {n.address} activate" for n in peers]
        lines.append(" exit-address-family")
    return "\n".join(lines) + "\n"


def start(ns: str, speaker: Speaker, base: Path) -> runner.Job:
    """Write the instance's config and return the job that starts its daemons in ``ns``."""
    directory = base / speaker.name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for parent in (base, base.parent):
        parent.chmod(0o755)  # user frr must reach its directory
    (directory / "frr.conf").write_text(config(speaker, directory))
    try:
        frr = pwd.getpwnam("frr")
    except KeyError as exc:
        from s2cvpn.errors import DriverUnavailable

        raise DriverUnavailable("FRR is not installed (no user frr): run scripts/install-system-packages.sh") from exc
    for path in (directory, *directory.iterdir()):
        os.chown(path, frr.pw_uid, frr.pw_gid)
    script = ""
    for daemon in DAEMONS:
        script += (
            f"{FRR_BIN}/{daemon} -d -f {directory}/frr.conf -i {directory}/{daemon}.pid "
            f"-z {directory}/zserv.api --vty_socket {directory} -P 0 -u frr -g frr\n"
        )
    return runner.ns_script(ns, script)


def stop(base: Path, name: str) -> None:
    """Kill the daemons of instance ``name`` by their pid files and delete its directory."""
    directory = base / name
    for daemon in DAEMONS:
        try:
            pid = int((directory / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(directory, ignore_errors=True)


def instances(base: Path, session_id: str) -> list[str]:
    if not base.is_dir():
        return []
    return [p.name for p in base.iterdir() if p.name.startswith(f"{session_id}.")]


def vtysh(ns: str, base: Path, name: str, command: str) -> str:
    return runner.output(["ip", "netns", "exec", ns, "vtysh", "--vty_socket", str(base / name), "-c", command])
