"""The remembered IP parsers answer as ``ipaddress`` does, and parse each text once."""

from __future__ import annotations

import ipaddress

import pytest

from s2cvpn.network import addresses


def test_host_and_prefix_answer_as_ipaddress_does() -> None:
    for text in ("198.51.100.7", "2001:db8::10", "2001:DB8:0:0::10"):
        assert addresses.host(text) == ipaddress.ip_address(text)
    for text in ("10.1.2.3/24", "10.250.0.1", "2001:db8:1::/64", "2001:db8::1"):
        assert addresses.prefix(text) == ipaddress.ip_network(text, strict=False)
    assert str(addresses.prefix("10.1.2.3/24")) == "10.1.2.0/24"  # host bits cleared, as strict=False does


def test_each_text_is_parsed_once() -> None:
    text = "203.0.113.77"
    first = addresses.host(text)
    hits = addresses.host.cache_info().hits
    assert addresses.host(text) is first
    assert addresses.host.cache_info().hits == hits + 1


@pytest.mark.parametrize("text", ["", "300.1.1.1", "10.0.0.0/33", "2001:db8:::1", "not an address", " 10.0.0.1"])
def test_what_does_not_parse_raises_every_time(text: str) -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            addresses.prefix(text)
        with pytest.raises(ValueError):
            addresses.host(text)
