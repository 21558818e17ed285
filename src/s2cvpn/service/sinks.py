"""Which notification sinks the service will call: no loopback, private, link-local or
otherwise internal targets (SSRF), and https only, unless the operator allows them; and
the HTTP client that calls them.

The client is aiohttp's: posting a notification with httpx cost 0.8 ms of CPU alone and
1.7 ms with 16 in flight (httpcore's pool polls every pooled socket whenever a request
starts or ends), against 0.12-0.18 ms with aiohttp (bench/HISTORY.md, seventeenth round);
at a few hundred events a second that was most of the service's CPU."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from s2cvpn.errors import InvalidArgument

POOLED_CONNECTIONS = 100  # open to all sinks together; more deliveries wait for one
DNS_CACHE_SECONDS = 10  # a sink's name is resolved (and checked) again after this


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


class InternalAddress(OSError):
    """A sink's name resolved to an internal address."""


class PublicResolver(ThreadedResolver):
    """Resolves sink names for the connections that are then made to the very addresses it
    returns, so a name cannot resolve to a public address when checked and to an internal
    one when called (DNS rebinding). A name with any internal address is refused."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        if any(_internal(ipaddress.ip_address(result["host"])) for result in found):
            raise InternalAddress(f"sink host {host} resolves to an internal address")
        return found


def open_client(*, allow_private: bool) -> aiohttp.ClientSession:
    """The session that posts to sinks; the caller closes it. Internal addresses are refused
    by resolution (``PublicResolver``) unless the operator allows them; literal addresses
    are ``check_sink``'s to refuse, before each post. It keeps no cookies: the sinks of
    different API consumers can share a host, and what one sets must not reach another."""
    resolver = ThreadedResolver() if allow_private else PublicResolver()
    connector = aiohttp.TCPConnector(resolver=resolver, limit=POOLED_CONNECTIONS, ttl_dns_cache=DNS_CACHE_SECONDS)
    return aiohttp.ClientSession(connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
