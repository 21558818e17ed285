"""Assessment: options now, after an upgrade (waitDays), or infeasible with reasons."""

from __future__ import annotations

import dataclasses
from datetime import date
from types import MappingProxyType

import pytest

from s2cvpn.errors import LocationNotServed
from s2cvpn.network import assessment, pricing
from s2cvpn.network.inventory import Inventory
from s2cvpn.network.inventory import Upgrade
from tests.unit.network.support import TODAY, request, small_network

UPGRADE_DAY = date(2027, 3, 1)  # cloud-par-1--p-paris: 2 -> 20 Gbps


def test_all_tiers_feasible_now(demo: Inventory) -> None:
    result = assessment.assess_connection(demo, request(bandwidth_mbps=500), {}, TODAY, None)
    assert result.feasible and result.context_code is None
    assert [o.sla for o in result.options] == ["A", "AA", "AAA"]
    assert all(o.wait_days is None and o.currency == "EUR" for o in result.options)
    assert all(o.estimated_latency_ms == pytest.approx(4.6) for o in result.options)
    rents = [o.rent_amount for o in result.options]
    assert rents == sorted(rents) and rents[1] == pricing.monthly_rent(demo, "AA", 500, False)


def test_wait_days_until_the_upgrade(demo: Inventory) -> None:
    big = request(ce="198.51.100.30", pe="203.0.113.9", bandwidth_mbps=5000)
    result = assessment.assess_connection(demo, big, {}, TODAY, "AA")
    assert result.feasible
    (option,) = result.options
    assert option.sla == "AA" and option.wait_days == (UPGRADE_DAY - TODAY).days == 93
    after = assessment.assess_connection(demo, big, {}, UPGRADE_DAY, "AA")
    assert after.options[0].wait_days is None


def test_infeasible_with_reasons(demo: Inventory) -> None:
    result = assessment.assess_connection(demo, request(pe="203.0.113.9", max_latency_ms=2), {}, TODAY, None)
    assert not result.feasible and result.options == ()
    assert result.context_code == "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES"
    assert result.context_message is not None
    for tier in ("A:", "AA:", "AAA:"):
        assert tier in result.context_message
    assert "maxLatency 2 ms" in result.context_message


def test_only_the_tiers_that_work_are_offered(demo: Inventory) -> None:
    result = assessment.assess_connection(demo, request(pe="203.0.113.9"), {}, TODAY, None)
    assert [o.sla for o in result.options] == ["A", "AA"]  # a single on-ramp: AAA impossible
    only_aaa = assessment.assess_connection(demo, request(pe="203.0.113.9"), {}, TODAY, "AAA")
    assert not only_aaa.feasible and "diversity not possible" in (only_aaa.context_message or "")


def test_reserves_nothing_and_propagates_unserved(demo: Inventory) -> None:
    load = MappingProxyType({"port:att-lisbon-a": 900})
    result = assessment.assess_connection(demo, request(bandwidth_mbps=100), load, TODAY, "A")
    assert result.feasible and dict(load) == {"port:att-lisbon-a": 900}
    assert not assessment.assess_connection(demo, request(bandwidth_mbps=101), load, TODAY, "A").feasible
    with pytest.raises(LocationNotServed):
        assessment.assess_connection(demo, request(ce="192.0.2.1"), {}, TODAY, None)


def test_wait_days_picks_the_first_sufficient_upgrade_among_many() -> None:
    base = small_network([("pe", "p", 1.0, 99.99), ("p", "cloud", 1.0, 99.99, 500)], port_mbps=10000)
    steps = [(date(2027, m, 1), 500 + 250 * m) for m in range(1, 13)]  # 750 ... 3500 Mbps
    link = base.links["p--cloud"]
    upgraded = dataclasses.replace(link, upgrades=tuple(Upgrade(c, d) for d, c in steps))
    inventory = dataclasses.replace(base, links={**base.links, "p--cloud": upgraded})
    for bandwidth_mbps, first_day in ((400, None), (1000, date(2027, 2, 1)), (2300, date(2027, 8, 1)), (3500, date(2027, 12, 1))):
        result = assessment.assess_connection(inventory, request(ce="198.51.100.1", bandwidth_mbps=bandwidth_mbps), {}, TODAY, "A")
        expected = None if first_day is None else (first_day - TODAY).days
        assert result.options[0].wait_days == expected, bandwidth_mbps
    assert not assessment.assess_connection(inventory, request(ce="198.51.100.1", bandwidth_mbps=3501), {}, TODAY, "A").feasible
