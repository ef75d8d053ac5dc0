"""Revenue figures (service.md, "Revenue figures", "Decided edges: Revenue"), by hand: MRR
at a month's end, the movements of a small portfolio over four months, retention and logo
churn, revenue per device, valuation, costs and the what-if."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from fractions import Fraction as F

import pytest

from core.billing.revenue import (
    CostModel,
    TenantMonths,
    arr,
    full_month_mrr,
    logo_churn,
    margin,
    month_end_mrr,
    movement,
    movements,
    parse_costs,
    percent_shown,
    previous_month,
    retention,
    revenue_per_device,
    valuation,
    what_if,
    what_if_range,
)
from core.billing.subscriptions import Cancel, Change, Start, history
from core.tiers import DEFAULT_TIERS
from tests.billing.tiers import TIERS

D = date


def test_previous_month_crosses_years() -> None:
    assert previous_month(2026, 1) == (2025, 12)
    assert previous_month(2026, 4, 12) == (2025, 4)
    assert previous_month(2026, 3, 0) == (2026, 3)


# --- MRR ------------------------------------------------------------------------------------


def test_mrr_is_the_full_month_of_base_and_devices_or_the_minimum() -> None:
    # lite monthly, 120 devices: 10000 + 100 x 200 + 20 x 100 = 32000
    assert full_month_mrr(TIERS["lite"], "monthly", 120) == 32_000
    # annual: 9000 + 18000 + 1800 = 28800
    assert full_month_mrr(TIERS["lite"], "annual", 120) == 28_800
    # pro annual, 10 devices: 24800 + 2400 = 27200 below the minimum 50000
    assert full_month_mrr(TIERS["pro"], "annual", 10) == 50_000
    assert arr(32_000) == 384_000


def test_mrr_at_a_month_end_uses_its_last_local_day() -> None:
    h = history(
        [
            Start(D(2026, 1, 20), "lite", trial_days=20),  # trial to Feb 8
            Change(D(2026, 3, 31), tier="pro"),  # the last day of March
            Cancel(D(2026, 5, 1)),  # the 1st of May: April still counts, May churns
        ],
        TIERS,
        "USD",
    )
    assert month_end_mrr(h, TIERS, 2025, 12, 5) == 0  # not yet subscribed
    assert month_end_mrr(h, TIERS, 2026, 1, 5) == 0  # in the trial
    assert month_end_mrr(h, TIERS, 2026, 2, 5) == 10_000 + 5 * 200  # lite
    assert month_end_mrr(h, TIERS, 2026, 3, 5) == 50_000  # pro: 31000 + 1500 < 50000
    assert month_end_mrr(h, TIERS, 2026, 4, 5) == 50_000
    assert month_end_mrr(h, TIERS, 2026, 5, 5) == 0


# --- movements of a small portfolio over four months ----------------------------------------

# month-end MRR, USD unless said; a month left out is 0
A = TenantMonths("a", "USD", {(2025, 4): 1_000, (2025, 12): 1_000, (2026, 1): 1_000,
                              (2026, 2): 1_000, (2026, 3): 1_500})  # fmt: skip
B = TenantMonths("b", "USD", {(2026, 2): 2_000, (2026, 3): 1_000, (2026, 4): 1_000},
                 devices={(2026, 4): 5})  # fmt: skip
C = TenantMonths("c", "USD", {(2025, 4): 400, (2025, 12): 500, (2026, 1): 500, (2026, 4): 700},
                 devices={(2026, 4): 7})  # fmt: skip
# D had MRR once, in 2025: its return in April is a reactivation, not new
DD = TenantMonths("d", "USD", {(2025, 4): 400, (2025, 6): 400, (2026, 4): 300},
                  devices={(2026, 4): 3})  # fmt: skip
E = TenantMonths("e", "EUR", {(2025, 4): 900, (2026, 1): 900, (2026, 2): 900,
                              (2026, 3): 1_200, (2026, 4): 1_200},
                 devices={(2026, 4): 4})  # fmt: skip
PORTFOLIO = [A, B, C, DD, E]


def test_each_tenants_movement() -> None:
    assert movement(A, 2026, 1) == (None, 0)
    assert movement(B, 2026, 2) == ("new", 2_000)
    assert movement(C, 2026, 2) == ("churn", 500)
    assert movement(A, 2026, 3) == ("expansion", 500)
    assert movement(B, 2026, 3) == ("contraction", 1_000)
    assert movement(A, 2026, 4) == ("churn", 1_500)
    assert movement(C, 2026, 4) == ("reactivation", 700)
    assert movement(DD, 2026, 4) == ("reactivation", 300)  # judged from every earlier month


def test_the_movements_of_four_months_reconcile_per_currency() -> None:
    usd = [movements(PORTFOLIO, 2026, m)["USD"] for m in (1, 2, 3, 4)]
    # (start, new, reactivation, expansion, contraction, churn, end)
    assert [
        (m.start, m.new, m.reactivation, m.expansion, m.contraction, m.churn, m.end) for m in usd
    ] == [
        (1_500, 0, 0, 0, 0, 0, 1_500),  # January: A 1000 + C 500 held
        (1_500, 2_000, 0, 0, 0, 500, 3_000),  # February: B new, C churns; 1500 + 2000 - 500
        (3_000, 0, 0, 500, 1_000, 0, 2_500),  # March: A +500, B -1000; 3000 + 500 - 1000
        (2_500, 0, 1_000, 0, 0, 1_500, 2_000),  # April: C 700 + D 300 back, A churns 1500
    ]
    assert all(m.reconciles for m in usd)
    eur = movements(PORTFOLIO, 2026, 3)["EUR"]
    assert (eur.start, eur.expansion, eur.end) == (900, 300, 1_200)  # never added to USD


def test_logo_churn_is_tenants_churned_over_tenants_with_mrr_at_the_start() -> None:
    # February: A and C had MRR at the start, C churned: 1/2
    assert logo_churn(PORTFOLIO, 2026, 2) == {"EUR": F(0), "USD": F(1, 2)}
    assert logo_churn(PORTFOLIO, 2026, 3) == {"EUR": F(0), "USD": F(0)}  # A, B: none churned
    # January for EUR: no tenant had MRR at the start (Dec 2025): null
    assert logo_churn(PORTFOLIO, 2026, 1)["EUR"] is None
    assert movements(PORTFOLIO, 2026, 4)["USD"].to_json()["logo_churn"] == "50.0"


def test_net_and_gross_retention_over_twelve_months() -> None:
    found = retention(PORTFOLIO, 2026, 4)
    usd, eur = found["USD"], found["EUR"]
    # cohort: the USD tenants with MRR at the end of 2025-04: A 1000, C 400, D 400 = 1800;
    # now A 0, C 700, D 300 = 1000: NRR 1000/1800 = 5/9, shown 55.5 (55.55 rounded down)
    assert usd.cohort == 3 and usd.net == F(5, 9) and percent_shown(usd.net) == "55.5"
    # gross caps each at its MRR then: 0 + 400 + 300 = 700/1800 = 7/18 = 38.88 -> 38.8
    assert usd.gross == F(7, 18) and percent_shown(usd.gross) == "38.8"
    # E 900 then, 1200 now: NRR 4/3 (133.3), GRR 1 (100.0)
    assert (eur.net, eur.gross) == (F(4, 3), F(1))
    assert eur.to_json() == {"currency": "EUR", "cohort": 1, "nrr": "133.3", "grr": "100.0"}
    # a month whose cohort is empty: null, not 0
    empty = retention(PORTFOLIO, 2026, 3)["USD"]  # 2025-03: nobody had MRR
    assert empty.net is None and empty.gross is None and percent_shown(None) is None


def test_revenue_per_device_and_valuation() -> None:
    # April, USD: (1000 + 700 + 300) / (5 + 7 + 3) = 2000/15; EUR 1200/4 = 300
    assert revenue_per_device(PORTFOLIO, 2026, 4) == {"EUR": F(300), "USD": F(2_000, 15)}
    assert revenue_per_device(PORTFOLIO, 2026, 1)["USD"] is None  # no devices given
    assert valuation(arr(2_000), Decimal("4.5")) == 108_000  # 24000 x 4.5
    assert valuation(12_345, Decimal("2.5")) == 30_863  # 30862.5, half-up
    with pytest.raises(TypeError):
        valuation(12_345, 2.5)  # type: ignore[arg-type]


def test_tenant_months_refuse_floats_and_bad_currencies() -> None:
    with pytest.raises(TypeError):
        TenantMonths("x", "USD", {(2026, 1): 10.0})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        TenantMonths("x", "usd", {})


# --- costs and the what-if ------------------------------------------------------------------

COSTS = """
[costs]
currency = "USD"
per_device_month = "12.5"   # cents per billable device-month
per_million_frames = 40     # cents per million accepted frames
per_tenant_month = 1000     # cents per tenant-month
"""


def test_costs_come_from_a_toml_table_and_refuse_floats() -> None:
    costs = parse_costs(tomllib.loads(COSTS)["costs"])
    assert costs == CostModel("USD", Decimal("12.5"), Decimal("40"), Decimal("1000"))
    with pytest.raises(ValueError, match="costs.per_device_month must be a decimal string"):
        parse_costs({"currency": "USD", "per_device_month": 12.5})
    with pytest.raises(ValueError, match="unknown settings: costs.per_frame"):
        parse_costs({"currency": "USD", "per_frame": 1})
    with pytest.raises(ValueError, match="costs.currency is missing"):
        parse_costs({"per_device_month": 1})
    with pytest.raises(ValueError, match="0 or more"):
        parse_costs({"currency": "USD", "per_tenant_month": -1})
    # 3 devices, 1.5 M frames, one tenant-month: 37.5 + 60 + 1000 = 1097.5 -> 1098
    assert costs.cost(3, 1_500_000) == 1_098
    assert margin(5_000, 1_098) == 3_902


def test_what_if_a_tier_at_volume() -> None:
    costs = parse_costs(tomllib.loads(COSTS)["costs"])
    standard = DEFAULT_TIERS["standard"]  # 19900 base; 1-100 at 300, 101-1000 at 250, 200
    # 1000 devices, one frame a minute, 30 days: 43,200 frames each, 43.2 M < 50 M included
    one = what_if(standard, 1_000, 60, costs)
    assert one.frames == 43_200_000
    assert one.revenue == 19_900 + 100 * 300 + 900 * 250 == 274_900
    # 1000 x 12.5 + 43.2 x 40 + 1000 = 12500 + 1728 + 1000
    assert one.cost == 15_228 and one.margin == 259_672
    # 2000 devices every 30 s: 172.8 M frames, 122.8 M above: 122,800 thousands at 1
    two = what_if(standard, 2_000, 30, costs)
    assert two.revenue == 19_900 + 30_000 + 225_000 + 1_000 * 200 + 122_800 == 597_700
    assert two.cost == 25_000 + 6_912 + 1_000 == 32_912 and two.margin == 564_788
    assert two.mrr == 474_900  # no overage in MRR
    assert [w.margin for w in what_if_range(standard, [1_000, 2_000], 60, costs)][0] == 259_672
    # premium's minimum 250000 lifts a small fleet: 99900 + 10 x 180 = 101700 < 250000
    premium = what_if(DEFAULT_TIERS["premium"], 10, 60, costs)
    assert premium.revenue == 250_000 == premium.mrr
    with pytest.raises(ValueError, match="priced in EUR, the costs in USD"):
        what_if(TIERS["euro"], 10, 60, costs)
