"""The duplicate key of a create (``sessions._dedup_key``): live sessions keep the key they
were stored with, so the key of a body must never change from one release to the next."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from s2cvpn.service.sessions import _dedup_key


def _as_first_written(client_id: str, body: dict[str, Any]) -> str:
    """The key as the first releases wrote it, with ``json.dumps(..., sort_keys=True)``."""
    servers = sorted(json.dumps(s, sort_keys=True) for s in body["applicationServers"])
    material = json.dumps([client_id, body["customerEdge"]["primaryIpAddress"], body["providerEdge"]["primaryIpAddress"], servers], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


BODY = {
    "customerEdge": {"primaryIpAddress": {"ipv6Address": "2001:db8::1", "ipv4Address": "198.51.100.7"}},
    "providerEdge": {"primaryIpAddress": {"ipv4Address": "203.0.113.9"}},
    "applicationServers": [{"ipv4Address": "10.1.2.3/32"}, {"ipv6Address": "2001:db8:5::/64", "ipv4Address": "10.9.0.0/16"}],
}


def test_the_key_is_the_one_live_sessions_were_stored_with() -> None:
    assert _dedup_key("client-é", BODY) == _as_first_written("client-é", BODY)


def test_the_order_of_servers_and_of_keys_does_not_change_the_key() -> None:
    shuffled = {
        "applicationServers": [{"ipv4Address": "10.9.0.0/16", "ipv6Address": "2001:db8:5::/64"}, {"ipv4Address": "10.1.2.3/32"}],
        "providerEdge": BODY["providerEdge"],
        "customerEdge": {"primaryIpAddress": {"ipv4Address": "198.51.100.7", "ipv6Address": "2001:db8::1"}},
    }
    assert _dedup_key("c1", shuffled) == _dedup_key("c1", BODY)


def test_another_client_or_server_makes_another_key() -> None:
    other_servers = {**BODY, "applicationServers": [{"ipv4Address": "10.1.2.4/32"}]}
    assert len({_dedup_key("c1", BODY), _dedup_key("c2", BODY), _dedup_key("c1", other_servers)}) == 3
