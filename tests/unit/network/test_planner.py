"""The planner: constraints, choices, protection, explanations."""

from __future__ import annotations

import time
from types import MappingProxyType

import pytest

from s2cvpn.errors import InsufficientResources
from s2cvpn.network import generator, loader, planner
from s2cvpn.network.inventory import Inventory, port_resource
from tests.unit.network.support import TODAY, request, small_network

# Two equal-latency branches from pe to cloud: pe-p1-cloud and pe-p2-cloud.
DIAMOND = [("pe", "p1", 1.0, 99.99), ("p1", "cloud", 1.0, 99.99), ("pe", "p2", 1.0, 99.99), ("p2", "cloud", 1.0, 99.99)]


def test_lowest_latency_path_is_chosen(demo: Inventory) -> None:
    plan = planner.plan_connection(demo, request(), {}, TODAY)
    assert plan.primary.nodes == ("pe-lisbon-1", "p-lisbon-1", "p-madrid-1", "cloud-mad-1")
    assert plan.latency_ms == plan.primary.latency_ms == pytest.approx(4.6)
    assert plan.secondary is None


def test_least_loaded_among_equal_latencies() -> None:
    inventory = small_network(DIAMOND)
    loaded_p1 = {"pe--p1": 50000}
    assert planner.plan_connection(inventory, request(ce="198.51.100.1"), loaded_p1, TODAY).primary.nodes[1] == "p2"
    loaded_p2 = {"p2--cloud": 50000}
    assert planner.plan_connection(inventory, request(ce="198.51.100.1"), loaded_p2, TODAY).primary.nodes[1] == "p1"


def test_capacity_avoids_full_links_and_names_them(demo: Inventory) -> None:
    full = {"p-lisbon-1--p-madrid-1": 99950}
    plan = planner.plan_connection(demo, request(), full, TODAY)
    assert "p-lisbon-1--p-madrid-1" not in plan.primary.links
    inventory = small_network([("pe", "p1", 1.0, 99.99), ("p1", "cloud", 1.0, 99.99, 500)])
    with pytest.raises(InsufficientResources, match=r"p1--cloud has 500 Mbps free") as caught:
        planner.plan_connection(inventory, request(ce="198.51.100.1", bandwidth_mbps=600), {}, TODAY)
    assert "600 Mbps" in caught.value.message


def test_ce_port_capacity_counts_the_load(demo: Inventory) -> None:
    load = {port_resource("att-lisbon-a"): 950}
    with pytest.raises(InsufficientResources, match="50 Mbps free of 1000, 100 Mbps requested"):
        planner.plan_connection(demo, request(), load, TODAY)


def test_latency_bound(demo: Inventory) -> None:
    assert planner.plan_connection(demo, request(max_latency_ms=5), {}, TODAY).latency_ms <= 5
    with pytest.raises(InsufficientResources, match=r"latency 4.6 ms > maxLatency 4 ms"):
        planner.plan_connection(demo, request(max_latency_ms=4), {}, TODAY)


def test_availability_picks_a_slower_but_safer_path() -> None:
    inventory = small_network([
        ("pe", "fast", 1.0, 99.8), ("fast", "cloud", 1.0, 99.8),  # 0.996: meets A, not AA
        ("pe", "safe", 3.0, 99.99), ("safe", "cloud", 3.0, 99.99),
    ])
    assert planner.plan_connection(inventory, request(ce="198.51.100.1", sla="A"), {}, TODAY).primary.nodes[1] == "fast"
    plan = planner.plan_connection(inventory, request(ce="198.51.100.1", sla="AA"), {}, TODAY)
    assert plan.primary.nodes[1] == "safe" and plan.availability >= 0.999
    with pytest.raises(InsufficientResources, match=r"latency 6 ms > maxLatency 5 ms"):
        planner.plan_connection(inventory, request(ce="198.51.100.1", sla="AA", max_latency_ms=5), {}, TODAY)


def test_availability_explained_when_no_path_is_enough() -> None:
    inventory = small_network([("pe", "p", 1.0, 99.8), ("p", "cloud", 1.0, 99.8)])
    with pytest.raises(InsufficientResources, match=r"availability 99.6004 % < target 99.9000 %"):
        planner.plan_connection(inventory, request(ce="198.51.100.1", sla="AA"), {}, TODAY)


def test_protection_is_link_and_srlg_disjoint(demo: Inventory) -> None:
    plan = planner.plan_connection(demo, request(protected=True), {}, TODAY)
    assert plan.secondary is not None
    assert not set(plan.primary.links) & set(plan.secondary.links)
    groups = [set().union(*(demo.links[x].srlgs for x in p.links)) for p in (plan.primary, plan.secondary)]
    assert not groups[0] & groups[1]
    # Without the shared duct the secondary would leave Lisbon towards Seville (shorter).
    assert "p-lisbon-2--p-seville" not in plan.secondary.links
    a1, a2 = plan.primary.availability, plan.secondary.availability
    assert plan.availability == pytest.approx(1 - (1 - a1) * (1 - a2))


def test_protection_demands_reserve_both_paths_and_a_shared_port_once(demo: Inventory) -> None:
    plan = planner.plan_connection(demo, request(protected=True, bandwidth_mbps=300), {}, TODAY)
    assert plan.secondary is not None
    expected = {port_resource("att-lisbon-a")} | set(plan.primary.links) | set(plan.secondary.links)
    assert set(plan.demands) == expected and set(plan.demands.values()) == {300}
    two_ports = planner.plan_connection(demo, request(protected=True, ce_secondary="198.51.100.11"), {}, TODAY)
    assert {port_resource("att-lisbon-a"), port_resource("att-lisbon-b")} <= set(two_ports.demands)
    assert two_ports.secondary is not None and two_ports.secondary.attachment_id == "att-lisbon-b"


def test_diversity_not_possible_when_paths_share_an_srlg() -> None:
    inventory = small_network([
        ("pe", "p1", 1.0, 99.99, 100000, ["duct-x"]), ("p1", "cloud", 1.0, 99.99),
        ("pe", "p2", 2.0, 99.99, 100000, ["duct-x"]), ("p2", "cloud", 1.0, 99.99),
    ])
    with pytest.raises(InsufficientResources, match="diversity not possible"):
        planner.plan_connection(inventory, request(ce="198.51.100.1", sla="AAA"), {}, TODAY)
    ok = small_network(DIAMOND)
    assert planner.plan_connection(ok, request(ce="198.51.100.1", sla="AAA"), {}, TODAY).secondary is not None


def test_trap_topology_finds_the_disjoint_pair() -> None:
    # The shortest path pe-a-b-cloud blocks every disjoint partner; pe-a-cloud + pe-b-cloud works.
    inventory = small_network([
        ("pe", "a", 1.0, 99.99), ("a", "b", 1.0, 99.99), ("b", "cloud", 1.0, 99.99),
        ("pe", "b", 3.0, 99.99), ("a", "cloud", 3.0, 99.99),
    ])
    plan = planner.plan_connection(inventory, request(ce="198.51.100.1", protected=True), {}, TODAY)
    assert plan.secondary is not None
    assert not set(plan.primary.links) & set(plan.secondary.links)


def test_plan_is_pure(demo: Inventory) -> None:
    load = MappingProxyType({"p-lisbon-1--p-madrid-1": 10})  # would raise if written to
    first = planner.plan_connection(demo, request(sla="AAA"), load, TODAY)
    assert planner.plan_connection(demo, request(sla="AAA"), load, TODAY) == first


def test_upgrade_capacity_applies_from_its_date(demo: Inventory) -> None:
    big = request(ce="198.51.100.30", pe="203.0.113.9", bandwidth_mbps=5000)
    with pytest.raises(InsufficientResources, match="cloud-par-1--p-paris has 2000 Mbps free"):
        planner.plan_connection(demo, big, {}, TODAY)
    later = TODAY.replace(year=2027, month=3, day=1)
    assert "cloud-par-1--p-paris" in planner.plan_connection(demo, big, {}, later).demands


def test_a_thousand_node_plan_is_fast() -> None:
    inventory = loader.inventory_from_mapping(generator.generate_inventory(1000, 3))
    ce = next(a for a in inventory.attachments.values() if a.customers is None).ce_addresses[0]
    clouds = [n.addresses[0] for n in inventory.nodes.values() if n.role == "cloud-pe"]
    planner.plan_connection(inventory, request(ce=str(ce), pe=str(clouds[0]), sla="A"), {}, TODAY)  # warm-up
    times = []
    for pe in clouds:
        start = time.perf_counter()
        planner.plan_connection(inventory, request(ce=str(ce), pe=str(pe), sla="A"), {}, TODAY)
        times.append(time.perf_counter() - start)
    assert sorted(times)[len(times) // 2] < 0.005
