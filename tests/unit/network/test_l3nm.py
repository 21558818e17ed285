"""Rendered L3NM documents are valid against the real RFC 9181/9182 YANG modules."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from s2cvpn.network import l3nm, planner, pools
from s2cvpn.network.inventory import Inventory
from tests.unit.network.support import TODAY, request

YANG_DIR = Path(os.environ.get("S2CVPN_YANG_DIR", Path(__file__).resolve().parents[3].parent / "shared" / "yang"))
PYANG_MODULES = Path(sys.prefix) / "share" / "yang" / "modules"

if os.environ.get("CI") and not (YANG_DIR / "yang-library.json").is_file():
    raise RuntimeError(f"CI must validate L3NM: YANG modules not found in {YANG_DIR} (set S2CVPN_YANG_DIR)")
pytestmark = pytest.mark.skipif(
    not (YANG_DIR / "yang-library.json").is_file(),
    reason=f"YANG modules not found in {YANG_DIR} (set S2CVPN_YANG_DIR)",
)


@pytest.fixture(scope="module")
def data_model() -> Any:
    from yangson import DataModel

    search = [str(YANG_DIR), str(PYANG_MODULES / "ietf"), str(PYANG_MODULES / "iana")]
    return DataModel.from_file(str(YANG_DIR / "yang-library.json"), search)


def validate(data_model: Any, document: dict[str, Any]) -> None:
    from yangson.enumerations import ContentType

    data_model.from_raw(document).validate(ctype=ContentType.config)


def render(demo: Inventory, *, route_protocol: str = "static", **kw: Any) -> dict[str, Any]:
    req = request(**kw)
    plan = planner.plan_connection(demo, req, {}, TODAY)
    allocation = pools.allocation_for(demo, 5, 2 if plan.secondary else 1)
    ipv6 = kw.get("ce", "").startswith("2001")
    return l3nm.render_l3nm(
        inventory=demo,
        session_id="0b6c1e0e-5a7e-4c0e-9d1a-000000000001",
        plan=plan,
        allocation=allocation,
        ce_addresses=tuple(str(a) for a in req.ce_primary),
        ce_prefixes=("2001:db8:1::/48",) if ipv6 else ("10.1.0.0/16", "10.2.0.0/24"),
        application_servers=("2001:db8:9::10",) if ipv6 else ("172.16.5.10", "172.16.6.0/24"),
        route_protocol=route_protocol,
        customer_asn=65010 if route_protocol == "BGP" else None,
        bandwidth_mbps=req.bandwidth_mbps,
    )


def service(document: dict[str, Any]) -> dict[str, Any]:
    return document["ietf-l3vpn-ntw:l3vpn-ntw"]["vpn-services"]["vpn-service"][0]


def nodes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["vpn-node-id"]: n for n in service(document)["vpn-nodes"]["vpn-node"]}


def accesses(node: dict[str, Any]) -> list[dict[str, Any]]:
    return node["vpn-network-accesses"]["vpn-network-access"]


def test_static(demo: Inventory, data_model: Any) -> None:
    document = render(demo)
    validate(data_model, document)
    svc = service(document)
    assert svc["vpn-id"] == "s2c-10005"
    profile = svc["vpn-instance-profiles"]["vpn-instance-profile"][0]
    assert profile["rd"] == "0:64500:10005"
    assert set(nodes(document)) == {"pe-lisbon-1", "cloud-mad-1"}
    (access,) = accesses(nodes(document)["pe-lisbon-1"])
    assert access["ip-connection"]["ipv4"]["local-address"] == "100.64.0.20"  # slot 5, path 0: 20th /31
    assert access["ip-connection"]["ipv4"]["address"][0]["customer-address"] == "100.64.0.21"
    routes = access["routing-protocols"]["routing-protocol"][0]["static"]["cascaded-lan-prefixes"]["ipv4-lan-prefixes"]
    assert {(r["lan"], r["next-hop"]) for r in routes} == {("10.1.0.0/16", "100.64.0.21"), ("10.2.0.0/24", "100.64.0.21")}
    assert access["service"]["pe-to-ce-bandwidth"] == str(100 * 1_000_000)
    (cloud,) = accesses(nodes(document)["cloud-mad-1"])
    cloud_routes = cloud["routing-protocols"]["routing-protocol"][0]["static"]["cascaded-lan-prefixes"]
    assert [r["lan"] for r in cloud_routes["ipv4-lan-prefixes"]] == ["172.16.5.10/32", "172.16.6.0/24"]


def test_bgp(demo: Inventory, data_model: Any) -> None:
    document = render(demo, route_protocol="BGP")
    validate(data_model, document)
    (access,) = accesses(nodes(document)["pe-lisbon-1"])
    bgp = access["routing-protocols"]["routing-protocol"][0]["bgp"]
    assert bgp["peer-as"] == 65010 and bgp["local-as"] == 64500
    assert "100.64.0.21" in bgp["neighbor"]


def test_protected(demo: Inventory, data_model: Any) -> None:
    document = render(demo, sla="AAA", ce_secondary="198.51.100.11", pe_secondary="203.0.113.2")
    validate(data_model, document)
    assert set(nodes(document)) == {"pe-lisbon-1", "pe-lisbon-2", "cloud-mad-1", "cloud-mad-2"}
    (secondary,) = accesses(nodes(document)["pe-lisbon-2"])
    assert secondary["ip-connection"]["ipv4"]["local-address"] == "100.64.0.22"  # slot 5, path 1
    assert secondary["ip-connection"]["ipv6"]["prefix-length"] == 127


def test_ipv6(demo: Inventory, data_model: Any) -> None:
    document = render(demo, ce="2001:db8:100::10", pe="2001:db8:200::1")
    validate(data_model, document)
    (access,) = accesses(nodes(document)["pe-lisbon-1"])
    lans = access["routing-protocols"]["routing-protocol"][0]["static"]["cascaded-lan-prefixes"]
    assert "ipv4-lan-prefixes" not in lans
    assert lans["ipv6-lan-prefixes"][0]["lan"] == "2001:db8:1::/48"


def test_the_validator_rejects_broken_documents(demo: Inventory, data_model: Any) -> None:
    from yangson.exceptions import YangsonException

    broken = copy.deepcopy(render(demo, route_protocol="BGP"))
    bgp = accesses(nodes(broken)["pe-lisbon-1"])[0]["routing-protocols"]["routing-protocol"][0]["bgp"]
    del bgp["peer-as"]  # mandatory
    with pytest.raises(YangsonException):
        validate(data_model, broken)
    bad_rd = copy.deepcopy(render(demo))
    service(bad_rd)["vpn-instance-profiles"]["vpn-instance-profile"][0]["rd"] = "64500:1"
    with pytest.raises(YangsonException):
        validate(data_model, bad_rd)


def test_bgp_needs_the_customer_asn(demo: Inventory) -> None:
    with pytest.raises(ValueError, match="customer ASN"):
        l3nm.render_l3nm(
            inventory=demo, session_id="x", plan=planner.plan_connection(demo, request(), {}, TODAY),
            allocation=pools.allocation_for(demo, 0, 1), ce_addresses=(), ce_prefixes=(), application_servers=(),
            route_protocol="BGP", customer_asn=None, bandwidth_mbps=1,
        )
