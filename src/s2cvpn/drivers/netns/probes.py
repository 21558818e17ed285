"""Measurements of a carried session: ping from the CE to its servers, interface counters.

Why these: latency and loss are what a consumer sees end to end, so they are probed CE
-> application server through the VPN (sourced from the CE LAN, like customer traffic);
throughput is what the session's CE-PE link really carried, from its byte counters over
the probe window.
"""

from __future__ import annotations

import json
import re
import time

from s2cvpn.drivers.netns import runner

PING_COUNT = 5
PING_INTERVAL_S = 0.05


def ping(ns: str, target: str, *, source: str | None, count: int = PING_COUNT) -> tuple[float | None, float]:
    """(average rtt ms or None, loss percent) of ``count`` pings from namespace ``ns``."""
    argv = ["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", str(count), "-i", str(PING_INTERVAL_S), "-W", "1"]
    if source:
        argv += ["-I", source]
    text = runner.output(argv + [target], check=False, timeout=count * PING_INTERVAL_S + 5)
    loss_match = re.search(r"([\d.]+)% packet loss", text)
    rtt_match = re.search(r"= [\d.]+/([\d.]+)/", text)
    loss = float(loss_match.group(1)) if loss_match else 100.0
    return (float(rtt_match.group(1)) if rtt_match else None), loss


def byte_counters(ns: str, devices: list[str]) -> dict[str, tuple[int, int]]:
    """device -> (rx bytes, tx bytes) in namespace ``ns``."""
    text = runner.output(["ip", "-n", ns, "-j", "-s", "link", "show"], check=False)
    out = {}
    for entry in json.loads(text or "[]"):
        if entry.get("ifname") in devices:
            stats = entry.get("stats64", {})
            out[entry["ifname"]] = (stats.get("rx", {}).get("bytes", 0), stats.get("tx", {}).get("bytes", 0))
    return out


def throughput_mbps(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], seconds: float) -> float:
    """The busier direction's rate over the window, summed over devices."""
    rx = sum(after[d][0] - before[d][0] for d in after if d in before)
    tx = sum(after[d][1] - before[d][1] for d in after if d in before)
    return max(rx, tx) * 8 / max(seconds, 1e-6) / 1e6


def now() -> float:
    return time.monotonic()
