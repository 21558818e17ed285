"""The price book: tiers, their prices, and the monthly rent of a connection.

The rent shown in an assessment comes only from here, so the API contract "a higher tier
never costs less than a lower one for the same request" is enforced where the book is
loaded (``pricing_from_mapping``): both price components must not decrease from A to AAA
and the protection factor is at least 1, which makes ``monthly_rent`` monotonic.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from s2cvpn.network.inventory import TIER_NAMES, Inventory, Pricing, Tier, TierPrice

if TYPE_CHECKING:  # only for typing: the loader passes its problem collector in
    from s2cvpn.network.loader import Problems


def monthly_rent(inventory: Inventory, sla: str, bandwidth_mbps: int, protected: bool) -> float:
    """Monthly rent in the provider's currency, rounded to cents (half up).

    rent = (base_monthly + per_mbps_monthly * bandwidth_mbps) * protection_factor, the factor
    applying when the session is protected *or* its tier needs diversity: both cases reserve
    two paths, so both cost the second path.
    """
    tier = inventory.tiers[sla]
    price = inventory.pricing.tiers[sla]
    amount = price.base_monthly + price.per_mbps_monthly * bandwidth_mbps
    if protected or tier.needs_diversity:
        amount *= inventory.pricing.protection_factor
    return float(Decimal(repr(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def tiers_from_mapping(p: Problems, raw: Any) -> dict[str, Tier] | None:
    """``tiers: {A: {availability_percent, needs_diversity}, AA: ..., AAA: ...}``."""
    if not p.mapping("tiers", raw, set(TIER_NAMES)):
        return None
    tiers: dict[str, Tier] = {}
    for name in TIER_NAMES:
        where = f"tiers.{name}"
        if name not in raw:
            p.add("tiers", f"missing tier '{name}'")
            continue
        if not p.mapping(where, raw[name], {"availability_percent", "needs_diversity"}):
            continue
        target = p.percent(where, raw[name], "availability_percent")
        diversity = raw[name].get("needs_diversity", False)
        if not isinstance(diversity, bool):
            p.add(where, f"needs_diversity must be true or false, not {diversity!r}")
        elif target is not None:
            tiers[name] = Tier(name=name, availability_target=target, needs_diversity=diversity)
    for low, high in zip(TIER_NAMES, TIER_NAMES[1:]):
        if low in tiers and high in tiers and tiers[high].availability_target < tiers[low].availability_target:
            p.add(f"tiers.{high}", f"availability target below tier {low}'s")
    return tiers if len(tiers) == len(TIER_NAMES) else None


def pricing_from_mapping(p: Problems, raw: Any, tiers: dict[str, Tier] | None) -> Pricing | None:
    """``pricing: {protection_factor, tiers: {A: {base_monthly, per_mbps_monthly}, ...}}``."""
    if not p.mapping("pricing", raw, {"protection_factor", "tiers"}):
        return None
    factor = p.number("pricing", raw, "protection_factor", minimum=1.0)
    book = raw.get("tiers")
    prices: dict[str, TierPrice] = {}
    if p.mapping("pricing.tiers", book, set(TIER_NAMES)):
        for name in TIER_NAMES:
            where = f"pricing.tiers.{name}"
            if name not in book:
                p.add("pricing.tiers", f"missing a price for tier '{name}'")
            elif p.mapping(where, book[name], {"base_monthly", "per_mbps_monthly"}):
                base = p.number(where, book[name], "base_monthly", minimum=0.0)
                per_mbps = p.number(where, book[name], "per_mbps_monthly", minimum=0.0)
                if base is not None and per_mbps is not None:
                    prices[name] = TierPrice(base_monthly=base, per_mbps_monthly=per_mbps)
    for low, high in zip(TIER_NAMES, TIER_NAMES[1:]):
        if low in prices and high in prices:
            lo, hi = prices[low], prices[high]
            if hi.base_monthly < lo.base_monthly or hi.per_mbps_monthly < lo.per_mbps_monthly:
                p.add(f"pricing.tiers.{high}", f"costs less than tier {low} (a higher tier never costs less)")
    if factor is None or len(prices) != len(TIER_NAMES):
        return None
    return Pricing(tiers=prices, protection_factor=factor)
