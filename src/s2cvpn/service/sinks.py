"""Which notification sinks the service will call: no loopback, private, link-local or
otherwise internal targets (SSRF), and https only, unless the operator allows them."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from s2cvpn.errors import InvalidArgument


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_sink(url: str, *, allow_private: bool) -> None:
    """Refuse a sink by its text alone (scheme, literal address, local names)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidArgument("sink must be an absolute https URL")
    if allow_private:
        return
    if parts.scheme != "https":
        raise InvalidArgument("sink must use https")
    if parts.username or parts.password:
        raise InvalidArgument("sink must not carry credentials in the URL")
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local") or "." not in host and ":" not in host:
        raise InvalidArgument("sink must not point at a local or internal host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if _internal(address):
        raise InvalidArgument("sink must not point at a loopback, private or link-local address")


async def resolve_public(url: str, *, allow_private: bool) -> None:
    """Before each delivery: the sink's name must not resolve to an internal address."""
    check_sink(url, allow_private=allow_private)
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    for info in infos:
        if _internal(ipaddress.ip_address(info[4][0])):
            raise InvalidArgument(f"sink host {host} resolves to an internal address")
