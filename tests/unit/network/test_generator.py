"""Generated inventories load, are deterministic, realistic in shape, and plan."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from s2cvpn.network import generator, loader, planner
from tests.unit.network.support import TODAY, request


@pytest.mark.parametrize("size", [10, 25, 100, 1000])
def test_sizes_load_and_plan(size: int) -> None:
    inventory = loader.inventory_from_mapping(generator.generate_inventory(size, seed=size))
    assert len(inventory.nodes) == size
    roles = Counter(node.role for node in inventory.nodes.values())
    assert roles["access-pe"] > 0 and roles["p"] >= 4 and roles["cloud-pe"] >= 2
    ce = next(a for a in inventory.attachments.values() if a.customers is None)
    for cloud in (n for n in inventory.nodes.values() if n.role == "cloud-pe"):
        plan = planner.plan_connection(inventory, request(ce=str(ce.ce_addresses[0]), pe=str(cloud.addresses[0]), sla="A"), {}, TODAY)
        assert plan.primary.nodes[0] == ce.access_pe and plan.primary.cloud_pe == cloud.name


def test_deterministic_in_the_seed() -> None:
    assert generator.generate_inventory(200, 7) == generator.generate_inventory(200, 7)
    assert generator.generate_inventory(200, 7) != generator.generate_inventory(200, 8)


def test_realistic_features() -> None:
    data = generator.generate_inventory(500, 1)
    inventory = loader.inventory_from_mapping(data)
    addresses = [a for att in inventory.attachments.values() for a in att.ce_addresses]
    assert len(addresses) == len(set(addresses))
    assert any(link.srlgs for link in inventory.links.values())
    assert any(link.upgrades for link in inventory.links.values())
    assert len({n.cloud.provider for n in inventory.nodes.values() if n.cloud}) >= 2
    # every access PE is dual-homed (it sits in a ring between the metro's two P routers)
    degree = Counter(end for link in inventory.links.values() for end in (link.a, link.b))
    assert all(degree[name] >= 2 for name, node in inventory.nodes.items() if node.role == "access-pe")
    # AAA works between a CE and a cloud in the same metro
    cloud = next(n for n in inventory.nodes.values() if n.role == "cloud-pe")
    metro_ce = next(a for a in inventory.attachments.values() if a.location == cloud.location and a.customers is None)
    plan = planner.plan_connection(inventory, request(ce=str(metro_ce.ce_addresses[0]), pe=str(cloud.addresses[0]), sla="AAA"), {}, TODAY)
    assert plan.secondary is not None and plan.availability >= 0.9999


def test_ten_thousand_nodes_in_a_few_seconds() -> None:
    start = time.perf_counter()
    data = generator.generate_inventory(10000, 1)
    inventory = loader.inventory_from_mapping(data)
    assert len(inventory.nodes) == 10000
    assert time.perf_counter() - start < 10


def test_too_small() -> None:
    with pytest.raises(ValueError):
        generator.generate_inventory(5, 1)
