"""Pool derivation: unique resources per slot and path, inside the configured pools."""

from __future__ import annotations

import dataclasses

import pytest

from s2cvpn.network import pools
from s2cvpn.network.inventory import Inventory


def test_every_slot_and_path_gets_unique_resources(demo: Inventory) -> None:
    size = pools.pool_size(demo)
    assert size == 4096
    allocations = [pools.allocation_for(demo, slot, 2) for slot in range(size)]
    for attribute in ("service_id", "vni", "route_distinguisher", "route_targets"):
        assert len({getattr(a, attribute) for a in allocations}) == size, attribute
    v4 = [net for a in allocations for net in a.p2p_ipv4]
    v6 = [net for a in allocations for net in a.p2p_ipv6]
    assert len(set(v4)) == len(v4) == 2 * size
    assert len(set(v6)) == len(v6) == 2 * size
    assert all(n.prefixlen == 31 and n.subnet_of(demo.pools.p2p_ipv4) for n in v4)
    assert all(n.prefixlen == 127 and n.subnet_of(demo.pools.p2p_ipv6) for n in v6)


def test_allocation_fields(demo: Inventory) -> None:
    allocation = pools.allocation_for(demo, 7, 1)
    assert allocation.vni == demo.pools.vni_base + 7
    assert allocation.service_id == f"s2c-{allocation.vni}"
    assert allocation.route_distinguisher == f"64500:{allocation.vni}"
    assert allocation.route_targets == (f"target:64500:{allocation.vni}",)
    assert len(allocation.p2p_ipv4) == len(allocation.p2p_ipv6) == 1
    assert allocation.cloud_gateway_ip == str(allocation.p2p_ipv4[0][0])
    assert allocation.provider_asn == demo.provider.asn


def test_bgp_asn_overrides_the_provider_asn(demo: Inventory) -> None:
    custom = dataclasses.replace(demo, pools=dataclasses.replace(demo.pools, bgp_asn=65010))
    assert pools.allocation_for(custom, 0, 1).provider_asn == 65010


@pytest.mark.parametrize(("slot", "paths"), [(-1, 1), (4096, 1), (0, 0), (0, 3)])
def test_out_of_range(demo: Inventory, slot: int, paths: int) -> None:
    with pytest.raises(ValueError):
        pools.allocation_for(demo, slot, paths)
