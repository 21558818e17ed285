"""Property: plan + reserve + release sequences never overbook, and release exactly."""

from __future__ import annotations

from collections import Counter
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2cvpn.errors import InsufficientResources
from s2cvpn.network import generator, loader, planner
from s2cvpn.network.inventory import Inventory
from tests.unit.network.support import DEMO_PATH, TODAY, request



def _tight() -> Inventory:
    """A generated network whose links (1-3 Gbps) are smaller than its CE ports (10 Gbps),
    so link capacity, not the ports, is what runs out."""
    data = generator.generate_inventory(40, 4)
    for i, link in enumerate(data["links"]):
        link["capacity_mbps"] = 1000 * (1 + i % 3)
        for upgrade in link.get("upgrades", []):
            upgrade["capacity_mbps"] = 2 * link["capacity_mbps"]
    for attachment in data["attachments"]:
        attachment["port_capacity_mbps"] = 10000
    return loader.inventory_from_mapping(data)


INVENTORIES = {"demo": loader.load_inventory(DEMO_PATH), "tight": _tight()}
CES = {k: [str(a.ce_addresses[0]) for a in v.attachments.values() if a.customers is None] for k, v in INVENTORIES.items()}
PES = {k: [str(n.addresses[0]) for n in v.nodes.values() if n.role == "cloud-pe"] for k, v in INVENTORIES.items()}

plan_op = st.tuples(
    st.just("plan"),
    st.integers(0, 1000),  # CE index (modulo)
    st.integers(0, 1000),  # PE index (modulo)
    st.sampled_from([1, 50, 300, 900, 1000, 1500, 5000]),
    st.sampled_from(["A", "AA", "AAA"]),
    st.booleans(),
)
release_op = st.tuples(st.just("release"), st.integers(0, 1000))
operation = st.one_of(plan_op, plan_op, plan_op, release_op)  # mostly plans: build up load


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(sorted(INVENTORIES)),
    day=st.sampled_from([TODAY, date(2027, 6, 1), date(2028, 6, 1)]),
    operations=st.lists(operation, min_size=5, max_size=60),
)
def test_never_exceeds_capacity(which: str, day: date, operations: list[tuple]) -> None:
    inventory: Inventory = INVENTORIES[which]
    load: Counter[str] = Counter()
    held: list[dict[str, int]] = []
    for op in operations:
        if op[0] == "plan":
            _, ce, pe, bw, sla, protected = op
            req = request(ce=CES[which][ce % len(CES[which])], pe=PES[which][pe % len(PES[which])],
                          bandwidth_mbps=bw, sla=sla, protected=protected)
            try:
                plan = planner.plan_connection(inventory, req, load, day)
            except InsufficientResources:
                continue
            assert plan.bandwidth_mbps == bw and all(v == bw for v in plan.demands.values())
            load.update(plan.demands)
            held.append(plan.demands)
        elif held:
            load.subtract(held.pop(op[1] % len(held)))
        for rid, used in load.items():
            assert 0 <= used <= inventory.capacity_of(rid, day), (rid, used)
    for demands in held:
        load.subtract(demands)
    assert all(v == 0 for v in load.values())
