"""IP addresses and prefixes from request text, each distinct text parsed once.

A create reads its CE and PE addresses three times (the API's schema checks them, the
planner's request and its provisioning read them again), and a client's sessions mostly
share them, while ``ipaddress`` takes 2-4 us a parse. What it returns is immutable, so one
object can serve every caller. Text that does not parse raises ``ValueError`` as
``ipaddress`` does, and is not remembered.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

# distinct texts remembered; a client sending new ones each time only turns the LRU over
REMEMBERED = 4096


@lru_cache(maxsize=REMEMBERED)
def host(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``ipaddress.ip_address(text)``."""
    return ipaddress.ip_address(text)


@lru_cache(maxsize=REMEMBERED)
def prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``ipaddress.ip_network(text, strict=False)``: an address alone is its /32 or /128."""
    return ipaddress.ip_network(text, strict=False)
