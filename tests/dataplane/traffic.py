"""Traffic generators for the data-plane tests: TCP/UDP listeners, clients, iperf3."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.dataplane.lab import sh

SERVER = r"""
import socket, sys, threading
addr = sys.argv[1]
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
def tcp(port):
    s = socket.socket(family, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen()
    while True:
        c, _ = s.accept(); c.sendall(b"hello"); c.close()
def udp(port):
    s = socket.socket(family, socket.SOCK_DGRAM); s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(2048); s.sendto(data, peer)
for spec in sys.argv[2:]:
    proto, port = spec.split(":")
    threading.Thread(target=tcp if proto == "tcp" else udp, args=(int(port),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

CLIENT = r"""
import socket, sys
proto, addr, port, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(1.0)
if src != "-":
    s.bind((src, 0))
try:
    if proto == "tcp":
        s.connect((addr, port)); print(s.recv(16).decode())
    else:
        s.sendto(b"ping", (addr, port)); print(s.recvfrom(16)[0].decode())
except OSError as exc:
    print("fail", exc)
"""


class Listeners:
    """TCP/UDP listeners on ``addr`` inside namespace ``ns`` (e.g. ``["tcp:443", "udp:53"]``)."""

    def __init__(self, ns: str, addr: str, specs: list[str]) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, addr, *specs],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def reach(ns: str, proto: str, addr: str, port: int, *, source: str | None = None) -> bool:
    out = sh(ns, sys.executable, "-c", CLIENT, proto, addr, str(port), source or "-").stdout
    return out.strip() in ("hello", "ping")


def iperf3_mbps(client_ns: str, server_ns: str, server: str, *, seconds: float = 4, source: str | None = None) -> float:
    """Received rate (Mbit/s) of one TCP iperf3 run client -> server. Four seconds by
    default: one TCP stall (a retransmission timeout, 0.2-0.4 s) in a 2 s run took a
    10 Mbit/s measurement 20% under the shaper's rate once in CI; in 4 s it stays within
    the tests' 15%."""
    port = "5301"
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server, "-p", port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.15)
        argv = ["iperf3", "-c", server, "-p", port, "-t", str(seconds), "-J", "-O", "0.5"]
        if source:
            argv += ["-B", source]
        result = sh(client_ns, *argv, timeout=seconds + 20)
        data = json.loads(result.stdout)
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e6
    finally:
        srv.kill()
        srv.wait()
