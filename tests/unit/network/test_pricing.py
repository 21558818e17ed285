"""The price book: a higher tier never costs less; rents are rounded to cents."""

from __future__ import annotations

import pytest

from s2cvpn.network import pricing
from s2cvpn.network.inventory import Inventory


@pytest.mark.parametrize("bandwidth_mbps", [1, 10, 100, 999, 1000, 10000, 1000000])
@pytest.mark.parametrize("protected", [False, True])
def test_monotonic_across_tiers(demo: Inventory, bandwidth_mbps: int, protected: bool) -> None:
    rents = [pricing.monthly_rent(demo, tier, bandwidth_mbps, protected) for tier in ("A", "AA", "AAA")]
    assert rents == sorted(rents)
    assert rents[0] > 0


def test_rent_formula(demo: Inventory) -> None:
    assert pricing.monthly_rent(demo, "A", 100, False) == 350.0  # 200 + 1.5 * 100
    assert pricing.monthly_rent(demo, "AA", 100, True) == 990.0  # (350 + 2 * 100) * 1.8
    # AAA always reserves two paths, so it pays the protection factor even when not asked.
    assert pricing.monthly_rent(demo, "AAA", 100, False) == pricing.monthly_rent(demo, "AAA", 100, True) == 1575.0


def test_rounded_to_cents(demo: Inventory) -> None:
    rent = pricing.monthly_rent(demo, "AA", 333, True)
    assert rent == round(rent, 2) == 1828.8
