"""tc token-bucket shaping: the guaranteed bandwidth of a session, the capacity of a link.

Why tbf on egress in both directions at the access VRF (toward the cloud on each VXLAN
device, toward the CE on the CE link) rather than ifb ingress: both directions are then
egress qdiscs of devices the session owns, so they vanish with its namespace and
``modify`` is one ``tc qdisc change`` per device, which retunes the bucket in place
without dropping the queue (no interruption).
"""

from __future__ import annotations

UNSHAPED_MBPS = 10_000  # links this fast or faster are left unshaped in the lab
MIN_BURST_BYTES = 32 * 1024
BURST_SECONDS = 0.004  # bucket depth: 4 ms of traffic at the rate
LATENCY_MS = 50


def burst_bytes(mbps: float) -> int:
    return max(MIN_BURST_BYTES, int(mbps * 1_000_000 / 8 * BURST_SECONDS))


def tbf_line(action: str, dev: str, mbps: float) -> str:
    """A ``tc -batch`` line; action is add, change or replace."""
    return (
        f"qdisc {action} dev {dev} root tbf rate {int(mbps * 1000)}kbit "
        f"burst {burst_bytes(mbps)} latency {LATENCY_MS}ms"
    )
