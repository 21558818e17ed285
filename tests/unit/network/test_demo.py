"""Facts the rest of the project relies on about the bundled demo inventory."""

from __future__ import annotations

import pytest

from s2cvpn.errors import LocationNotServed
from s2cvpn.network import planner, resolve
from s2cvpn.network.inventory import Inventory
from tests.unit.network.support import TODAY, request


@pytest.mark.parametrize(
    ("ce", "attachment_id", "access_pe", "port_mbps"),
    [
        ("198.51.100.10", "att-lisbon-a", "pe-lisbon-1", 1000),
        ("2001:db8:100::10", "att-lisbon-a", "pe-lisbon-1", 1000),
        ("198.51.100.11", "att-lisbon-b", "pe-lisbon-2", 1000),
        ("2001:db8:100::11", "att-lisbon-b", "pe-lisbon-2", 1000),
        ("198.51.100.20", "att-porto-a", "pe-porto-1", 1000),
        ("2001:db8:100::20", "att-porto-a", "pe-porto-1", 1000),
        ("198.51.100.30", "att-madrid-a", "pe-madrid-1", 10000),
        ("2001:db8:100::30", "att-madrid-a", "pe-madrid-1", 10000),
    ],
)
def test_ce_addresses_resolve(demo: Inventory, ce: str, attachment_id: str, access_pe: str, port_mbps: int) -> None:
    ends = resolve.resolve_endpoints(demo, request(ce=ce))
    assert ends.attachment.id == attachment_id
    assert ends.attachment.access_pe == access_pe
    assert ends.attachment.port_capacity_mbps == port_mbps


def test_lisbon_ces_share_a_site_on_two_pes(demo: Inventory) -> None:
    a = resolve.resolve_endpoints(demo, request(ce="198.51.100.10")).attachment
    b = resolve.resolve_endpoints(demo, request(ce="198.51.100.11")).attachment
    assert a.location == b.location and a.location.city == "Lisbon"
    assert a.access_pe != b.access_pe


def test_both_ce_identities_must_name_one_attachment(demo: Inventory) -> None:
    ends = resolve.resolve_endpoints(demo, request(ce=("198.51.100.10", "2001:db8:100::10")))
    assert ends.attachment.id == "att-lisbon-a"
    with pytest.raises(LocationNotServed, match="two different attachments"):
        resolve.resolve_endpoints(demo, request(ce=("198.51.100.10", "2001:db8:100::11")))


def test_cloud_pes(demo: Inventory) -> None:
    one = resolve.resolve_endpoints(demo, request(pe="203.0.113.1")).cloud_pe
    two = resolve.resolve_endpoints(demo, request(pe="203.0.113.2")).cloud_pe
    nine = resolve.resolve_endpoints(demo, request(pe="203.0.113.9")).cloud_pe
    assert one.name != two.name and one.cloud == two.cloud
    assert nine.cloud != one.cloud
    for node, v6 in ((one, "2001:db8:200::1"), (two, "2001:db8:200::2"), (nine, "2001:db8:200::9")):
        assert resolve.resolve_endpoints(demo, request(pe=v6)).cloud_pe.name == node.name


@pytest.mark.parametrize("address", ["192.0.2.1", "192.0.2.10", "192.0.2.254"])
def test_documentation_range_is_not_served(demo: Inventory, address: str) -> None:
    with pytest.raises(LocationNotServed, match="not attached"):
        resolve.resolve_endpoints(demo, request(ce=address))
    with pytest.raises(LocationNotServed, match="not a cloud provider edge"):
        resolve.resolve_endpoints(demo, request(pe=address))


def test_secondary_addresses(demo: Inventory) -> None:
    ends = resolve.resolve_endpoints(demo, request(ce_secondary="198.51.100.11", pe_secondary="203.0.113.2"))
    assert ends.secondary_attachment is not None and ends.secondary_attachment.id == "att-lisbon-b"
    assert ends.secondary_cloud_pe is not None and ends.secondary_cloud_pe.name == "cloud-mad-2"
    with pytest.raises(LocationNotServed, match="customerEdge secondary 192.0.2.5"):
        resolve.resolve_endpoints(demo, request(ce_secondary="192.0.2.5"))
    with pytest.raises(LocationNotServed, match="providerEdge secondary"):
        resolve.resolve_endpoints(demo, request(pe_secondary="192.0.2.5"))


def test_restricted_attachment(demo: Inventory) -> None:
    with pytest.raises(LocationNotServed, match="attached for another customer"):
        resolve.resolve_endpoints(demo, request(ce="198.51.100.12", client_id="someone-else"))
    ends = resolve.resolve_endpoints(demo, request(ce="198.51.100.12", client_id="restricted-customer"))
    assert ends.attachment.customers == frozenset({"restricted-customer"})


def test_lisbon_has_diverse_paths_to_both_cloud_pes(demo: Inventory) -> None:
    plan = planner.plan_connection(
        demo, request(sla="AAA", ce_secondary="198.51.100.11", pe_secondary="203.0.113.2"), {}, TODAY
    )
    assert plan.secondary is not None
    assert plan.primary.cloud_pe == "cloud-mad-1" and plan.secondary.cloud_pe == "cloud-mad-2"
    assert not set(plan.primary.links) & set(plan.secondary.links)
    srlgs = [set().union(*(demo.links[lid].srlgs for lid in path.links)) for path in (plan.primary, plan.secondary)]
    assert not srlgs[0] & srlgs[1]


def test_one_path_meets_aa_but_never_aaa(demo: Inventory) -> None:
    for ce in ("198.51.100.10", "198.51.100.20", "198.51.100.30", "198.51.100.50"):
        plan = planner.plan_connection(demo, request(ce=ce, sla="AA"), {}, TODAY)
        assert demo.tiers["AA"].availability_target <= plan.availability < demo.tiers["AAA"].availability_target


def test_tiers_prices_and_upgrades(demo: Inventory) -> None:
    assert [demo.tiers[t].availability_target for t in ("A", "AA", "AAA")] == [0.995, 0.999, 0.9999]
    assert [demo.tiers[t].needs_diversity for t in ("A", "AA", "AAA")] == [False, False, True]
    assert demo.provider.currency == "EUR"
    assert any(link.upgrades for link in demo.links.values())
    assert len(demo.attachments) >= 12


def test_ce_ports_are_the_bottleneck(demo: Inventory) -> None:
    assert planner.plan_connection(demo, request(bandwidth_mbps=1000), {}, TODAY).bandwidth_mbps == 1000
    assert planner.plan_connection(demo, request(ce="198.51.100.30", bandwidth_mbps=10000), {}, TODAY)
    with pytest.raises(Exception, match="CE port of attachment att-lisbon-a"):
        planner.plan_connection(demo, request(bandwidth_mbps=1001), {}, TODAY)
