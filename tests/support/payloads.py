"""Valid request bodies on the bundled demo network, unique per call where it matters."""

from __future__ import annotations

import itertools
import random
from typing import Any

_counter = itertools.count(random.randrange(1, 50_000))

LISBON_CE = "198.51.100.10"
LISBON_CE_2 = "198.51.100.11"
PORTO_CE = "198.51.100.20"
MADRID_CE = "198.51.100.30"
# CEs whose ports only capacity-counting tests use, so other tests' sessions never skew them
CAPACITY_CE = "198.51.100.31"
ASSESSMENT_CE = "198.51.100.32"
CLOUD_PE = "203.0.113.1"
CLOUD_PE_2 = "203.0.113.2"
OTHER_CLOUD_PE = "203.0.113.9"


def unique_server() -> str:
    n = next(_counter)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}/32"


def session_request(*, ce: str = LISBON_CE, pe: str = CLOUD_PE, bandwidth: int = 10, sla: str = "A", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serviceName": "backup-to-cloud",
        "customerEdge": {"type": "site", "primaryIpAddress": {"ipv4Address": ce}, "location": "Lisbon", "prefixes": ["192.168.10.0/24"]},
        "providerEdge": {"type": "cloud", "primaryIpAddress": {"ipv4Address": pe}},
        "applicationServers": [{"ipv4Address": unique_server()}],
        "sla": sla,
        "guaranteeBandwidth": bandwidth,
    }
    body.update(extra)
    return body


def protected_request(**extra: Any) -> dict[str, Any]:
    body = session_request(isProtected=True, **extra)
    body["customerEdge"]["secondaryIpAddress"] = {"ipv4Address": LISBON_CE_2}
    body["providerEdge"]["secondaryIpAddress"] = {"ipv4Address": CLOUD_PE_2}
    return body


def assessment_request(**extra: Any) -> dict[str, Any]:
    body = session_request(**extra)
    for key in ("serviceName", "sla"):
        body.pop(key, None)
    body.update({k: v for k, v in extra.items() if k == "sla"})
    return body
