"""Stored plans and allocations round-trip, and the cheap gateway read agrees with the model."""

from __future__ import annotations

import pytest

from s2cvpn.network import pools
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
