"""Tiers with round prices, so that each invoice of the billing tests is computed by hand."""

from __future__ import annotations

from decimal import Decimal as D

from core.tiers import DEFAULT_TIERS, DevicePrice, Tier

# credit bands are the standard tier's unless said: below 99.5 -> 10 %, 99.0 -> 25 %, 95 -> 50 %
LITE = Tier(
    base_fee=10_000,
    device_price=DevicePrice("graduated", ((100, 200), (None, 100))),
    included_frames=1_000_000,
    overage_per_1000=5,
    minimum=0,
    annual_discount=D("10"),
)
LITE_VOLUME = Tier(
    base_fee=10_000,
    device_price=DevicePrice("volume", ((100, 200), (None, 100))),
    included_frames=1_000_000,
    overage_per_1000=5,
    minimum=0,
    annual_discount=D("10"),
)
PRO = Tier(
    base_fee=31_000,
    device_price=DevicePrice("graduated", ((100, 300), (None, 250))),
    included_frames=2_000_000,
    overage_per_1000=3,
    minimum=50_000,
    annual_discount=D("20"),
    uptime_target=D("99.9"),
    credit_bands=((D("99.9"), D("10")), (D("99.5"), D("25"))),
)
FLOOR = Tier(
    base_fee=1_000,
    device_price=DevicePrice("graduated", ((10, 100), (None, 50))),
    included_frames=1_000,
    overage_per_1000=10,
    minimum=10_000,
    annual_discount=D("0"),
)
ODD = Tier(base_fee=12_345, minimum=0, overage_per_1000=0)
EURO = Tier(base_fee=20_000, currency="EUR")

TIERS: dict[str, Tier] = {
    **DEFAULT_TIERS,
    "lite": LITE,
    "lite_volume": LITE_VOLUME,
    "pro": PRO,
    "floor": FLOOR,
    "odd": ODD,
    "euro": EURO,
}
USD_TIERS = [name for name, tier in TIERS.items() if tier.currency == "USD"]
