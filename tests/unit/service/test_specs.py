"""Stored plans and allocations round-trip, and the cheap gateway read agrees with the model."""

from __future__ import annotations

from dataclasses import asdict

import orjson
import pytest

from s2cvpn.network import pools
from s2cvpn.network.plans import PathPlan, Plan
from s2cvpn.network.loader import load_inventory
from s2cvpn.config import BUNDLED_INVENTORY
from s2cvpn.service import specs


@pytest.mark.parametrize("slot", [0, 1, 7, 255, 4095])
@pytest.mark.parametrize("paths", [1, 2])
def test_allocation_round_trip_and_gateway(slot: int, paths: int) -> None:
    inventory = load_inventory(BUNDLED_INVENTORY)
    allocation = pools.allocation_for(inventory, slot, paths)
    stored = specs.allocation_to_json(allocation)
    assert specs.allocation_from_json(stored) == allocation
    assert specs.cloud_gateway_ip(stored) == allocation.cloud_gateway_ip


@pytest.mark.parametrize("protected", [False, True])
def test_plan_round_trips_through_stored_json(protected: bool) -> None:
    primary = PathPlan(("pe-a", "p-1", "cloud-1"), ("l-1", "l-2"), 1.25, 0.9991, "att-a", "cloud-1")
    secondary = PathPlan(("pe-b", "p-2", "cloud-2"), ("l-3", "l-4"), 2.5, 0.999, "att-b", "cloud-2") if protected else None
    plan = Plan("AAA" if protected else "A", 50, primary, secondary, 1.25, 0.99999, {"l-1": 50, "port:att-a": 50})
    stored = specs.plan_to_json(plan)
    assert stored == asdict(plan)  # what the rows written before the hand-made encoder hold
    assert specs.plan_from_json(orjson.loads(orjson.dumps(stored))) == plan
