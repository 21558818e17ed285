"""The loader reports every problem with its location and never half-loads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s2cvpn.network import loader
from tests.unit.network import support

Mutation = Callable[[dict[str, Any]], None]


def _node(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in data["nodes"] if n["name"] == name)


def _att(data: dict[str, Any], att_id: str) -> dict[str, Any]:
    return next(a for a in data["attachments"] if a["id"] == att_id)


CASES: list[tuple[str, Mutation, str]] = [
    ("unknown node in link", lambda d: d["links"][0].update(b="p-9"), "links[0] (p-lisbon-1--p-9): unknown node 'p-9'"),
    ("unknown node in attachment", lambda d: _att(d, "att-porto-a").update(access_pe="pe-nowhere"),
     "(att-porto-a): unknown node 'pe-nowhere'"),
    ("duplicate node", lambda d: d["nodes"].append(dict(_node(d, "p-paris"), loopback="10.9.9.9")),
     "duplicate node name 'p-paris'"),
    ("duplicate link", lambda d: d["links"].append(dict(d["links"][0])), "duplicate link id 'p-lisbon-1--p-madrid-1'"),
    ("duplicate attachment", lambda d: d["attachments"].append(dict(_att(d, "att-porto-b"), ce_addresses=["192.0.2.77"])),
     "duplicate attachment id 'att-porto-b'"),
    ("CE address twice", lambda d: _att(d, "att-porto-b").update(ce_addresses=["198.51.100.10"]),
     "address 198.51.100.10 already used by attachment 'att-lisbon-a'"),
    ("cloud address reused by a CE", lambda d: _att(d, "att-porto-b").update(ce_addresses=["203.0.113.1"]),
     "address 203.0.113.1 already used by node 'cloud-mad-1'"),
    ("cloud PE address twice", lambda d: _node(d, "cloud-mad-2").update(addresses=["203.0.113.1"]),
     "address 203.0.113.1 already used by node 'cloud-mad-1'"),
    ("cloud-pe without address", lambda d: _node(d, "cloud-par-1").pop("addresses"), "a cloud-pe needs at least one address"),
    ("addresses on a P router", lambda d: _node(d, "p-paris").update(addresses=["192.0.2.1"]),
     "only a cloud-pe has 'addresses' (this node is a p)"),
    ("zero capacity", lambda d: d["links"][1].update(capacity_mbps=0), "links[1] (p-lisbon-2--p-seville): capacity_mbps must be > 0"),
    ("negative port", lambda d: _att(d, "att-porto-a").update(port_capacity_mbps=-5), "port_capacity_mbps must be > 0, not -5"),
    ("negative latency", lambda d: d["links"][2].update(latency_ms=-1), "latency_ms -1 is outside"),
    ("availability 0", lambda d: d["links"][2].update(availability_percent=0), "availability_percent 0 is outside (0, 100]"),
    ("availability > 100", lambda d: d["links"][2].update(availability_percent=100.5), "availability_percent 100.5 is outside (0, 100]"),
    ("tier missing", lambda d: d["tiers"].pop("AA"), "tiers: missing tier 'AA'"),
    ("tier unknown", lambda d: d["tiers"].update(AAAA={"availability_percent": 99.999}), "tiers: unknown key 'AAAA'"),
    ("price missing", lambda d: d["pricing"]["tiers"].pop("AAA"), "pricing.tiers: missing a price for tier 'AAA'"),
    ("higher tier cheaper", lambda d: d["pricing"]["tiers"]["AAA"].update(per_mbps_monthly=0.1),
     "pricing.tiers.AAA: costs less than tier AA"),
    ("bad CE IP", lambda d: _att(d, "att-porto-b").update(ce_addresses=["198.51.100.300"]), "'198.51.100.300' is not an IP address"),
    ("bad loopback", lambda d: _node(d, "p-paris").update(loopback="2001:db8::1"), "loopback 2001:db8::1 is not an IPv4 address"),
    ("attachment on a P router", lambda d: _att(d, "att-porto-a").update(access_pe="p-porto-1"),
     "node 'p-porto-1' is a p, attachments go on an access-pe"),
    ("pool too small", lambda d: d["pools"].update(p2p_ipv4="100.64.0.0/30"), "pools: p2p_ipv4: 100.64.0.0/30 is too small"),
    ("pool not a network", lambda d: d["pools"].update(p2p_ipv6="2001:db8::1/64"), "pools: p2p_ipv6:"),
    ("VNI overflow", lambda d: d["pools"].update(vni_base=16777000), "exceed 16777215"),
    ("node without links", lambda d: d["nodes"].append({"name": "p-lonely", "role": "p", "loopback": "10.9.0.1", "location": "paris"}),
     "nodes (p-lonely): has no links"),
    ("unknown key", lambda d: d["links"][0].update(capacity=5), "unknown key 'capacity'"),
    ("unknown location", lambda d: _node(d, "p-paris").update(location="atlantis"), "unknown location 'atlantis'"),
    ("bad role", lambda d: _node(d, "p-paris").update(role="core"), "role 'core' is not one of"),
    ("upgrade shrinks a link", lambda d: d["links"][0].update(upgrades=[{"capacity_mbps": 5, "available_from": "2027-01-01"}]),
     "would shrink the link (100000 Mbps before)"),
    ("upgrade without date", lambda d: d["links"][0].update(upgrades=[{"capacity_mbps": 5}]), "upgrades[0]: missing 'available_from'"),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_reported_with_its_location(
    demo_mapping: dict[str, Any], mutate: Mutation, expected: str
) -> None:
    mutate(demo_mapping)
    with pytest.raises(loader.InventoryError) as caught:
        loader.inventory_from_mapping(demo_mapping)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert expected in str(caught.value)


def test_every_problem_is_listed_at_once(demo_mapping: dict[str, Any]) -> None:
    demo_mapping["links"][0]["b"] = "p-9"
    demo_mapping["links"][5]["latency_ms"] = -3
    demo_mapping["tiers"].pop("A")
    with pytest.raises(loader.InventoryError) as caught:
        loader.inventory_from_mapping(demo_mapping)
    problems = caught.value.problems
    assert len(problems) >= 3
    assert any("unknown node 'p-9'" in p for p in problems)
    assert any("links[5]" in p and "latency_ms" in p for p in problems)
    assert any("missing tier 'A'" in p for p in problems)


def test_the_demo_is_valid_and_percentages_become_fractions(demo_mapping: dict[str, Any]) -> None:
    inventory = loader.inventory_from_mapping(demo_mapping)
    assert inventory.tiers["AA"].availability_target == 0.999
    assert inventory.links["cloud-par-1--p-paris"].availability == 0.9999
    assert loader.check_inventory_file(support.DEMO_PATH) == []


def test_check_file_reports_unreadable_and_non_inventory_files() -> None:
    missing = loader.check_inventory_file("/nonexistent/inventory.yaml")
    assert len(missing) == 1 and "cannot read" in missing[0]
    readme = Path(__file__).resolve().parents[3] / "README.md"  # Markdown: not YAML
    problems = loader.check_inventory_file(readme)
    assert len(problems) == 1 and "not valid YAML" in problems[0]
    with pytest.raises(loader.InventoryError) as caught:
        loader.inventory_from_mapping(["a", "list"])
    assert caught.value.problems == ["(top): the inventory must be a mapping"]


def test_link_id_defaults_to_its_ends(demo: Any) -> None:
    assert "p-lisbon-1--p-madrid-1" in demo.links
    assert demo.links["p-madrid-2--p-paris"].upgrades[0].capacity_mbps == 400000
