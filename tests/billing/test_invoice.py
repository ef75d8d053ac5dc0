"""Invoices (service.md, "Invoices", "Numbers", "Decided edges": Tier changes, Lines, Terms
and trials): hand-computed invoices, the arithmetic of each in its comments. Prices are
minor units (cents); every amount is its line's exact product rounded once, half-up."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction as F

import pytest

from core.billing.invoice import (
    Invoice,
    build_invoice,
    decimal_text,
    invoice_number,
    round_half_up,
    shown_attainment,
)
from core.billing.subscriptions import Cancel, Change, Span, Start, history, spans
from core.sla.attainment import shown
from core.tiers import Tier
from tests.billing.tiers import TIERS

D = date


def invoice(
    events: list,
    year: int,
    month: int,
    devices: int,
    frames: int = 0,
    attainment: F | None = None,
    tax: str = "0",
) -> Invoice:
    h = history(events, TIERS, "USD")
    return build_invoice(
        spans(h, year, month),
        TIERS,
        billable_devices=devices,
        frames=frames,
        attainment=attainment,
        tax_rate=Decimal(tax),
        currency="USD",
    )


def rows(inv: Invoice) -> list[tuple[str, int, int, str, int]]:
    return [(li.kind, li.quantity, li.unit_price, li.factor_text, li.amount) for li in inv.lines]


def test_round_half_up_goes_away_from_zero() -> None:
    assert [round_half_up(F(n, 2)) for n in (-5, -3, -1, 1, 3, 5)] == [-3, -2, -1, 1, 2, 3]
    assert round_half_up(F(-1234, 1)) == -1234
    assert round_half_up(F(10, 3)) == 3 and round_half_up(F(-10, 3)) == -3
    assert round_half_up(F(-5, 3)) == -2  # -1.67


def test_a_factor_shows_exactly_when_it_terminates_else_to_ten_places() -> None:
    assert decimal_text(F(7, 8)) == "0.875"
    assert decimal_text(F(1)) == "1"
    assert decimal_text(F(0)) == "0"
    assert decimal_text(F(-1, 10)) == "-0.1"
    assert decimal_text(F(10, 31)) == "0.3225806452"
    assert decimal_text(F(2, 3)) == "0.6666666667"


def test_every_line_type_in_one_month() -> None:
    # floor: base 1000, devices 1-10 at 100 and 11+ at 50, 1000 frames included, 10 per
    # started 1000 above, minimum 10000. A full March, 12 devices, 3500 frames, 99.2 %
    # (below 99.5: 10 %), tax 19 %.
    inv = invoice([Start(D(2026, 1, 1), "floor")], 2026, 3, 12, 3_500, F(992, 10), "19")
    assert rows(inv) == [
        ("base", 1, 1_000, "1", 1_000),
        ("devices", 10, 100, "1", 1_000),  # devices 1-10
        ("devices", 2, 50, "1", 100),  # devices 11-12
        ("overage", 3, 10, "1", 30),  # 2500 above 1000: 3 started thousands
        ("minimum", 1, 7_870, "1", 7_870),  # 10000 - (1000 + 1000 + 100 + 30)
        ("sla_credit", 1, 9_970, "-0.1", -997),  # 10 % of 1000 + 1000 + 100 + 7870
        ("tax", 1, 9_003, "0.19", 1_711),  # 19 % of 2130 + 7870 - 997 = 1710.57
    ]
    assert (inv.subtotal, inv.tax, inv.total) == (9_003, 1_711, 10_714)
    assert inv.attainment == "99.200" and inv.band == (Decimal("99.5"), Decimal("10"))
    assert inv.last_tier == "floor" and inv.days_in_month == 31


@pytest.mark.parametrize(
    "tier, devices, lines",
    [
        # brackets 1-100 at 200, 101+ at 100
        ("lite", 100, [(100, 200, 20_000)]),  # graduated, 100: all in the first bracket
        ("lite_volume", 100, [(100, 200, 20_000)]),  # volume, 100: the first bracket's price
        ("lite", 101, [(100, 200, 20_000), (1, 100, 100)]),  # graduated: 20000 + 1 x 100
        ("lite_volume", 101, [(101, 100, 10_100)]),  # volume: all 101 at 100
        ("lite", 0, []),  # no device, no devices line
    ],
)
def test_graduated_and_volume_at_a_bracket_edge(tier, devices, lines) -> None:
    inv = invoice([Start(D(2026, 1, 1), tier)], 2026, 3, devices)
    got = [(li.quantity, li.unit_price, li.amount) for li in inv.of_kind("devices")]
    assert got == lines
    assert inv.total == 10_000 + sum(amount for *_, amount in lines)


def test_a_mid_month_upgrade_prorates_each_span_and_the_last_tier_rules() -> None:
    # April (30 days): lite to Apr 15, pro from Apr 16; 15/30 = 1/2 each. 50 devices.
    events = [Start(D(2026, 2, 1), "lite"), Change(D(2026, 4, 16), tier="pro")]
    # pro (the last billed day's tier) includes 2,000,000 frames at 3 per started 1000, and
    # earns 10 % below 99.9; lite would have included 1,000,000 and earned nothing at 99.6
    inv = invoice(events, 2026, 4, 50, 2_000_001, F(996, 10))
    assert rows(inv) == [
        ("base", 1, 10_000, "0.5", 5_000),  # lite 10000 x 15/30
        ("base", 1, 31_000, "0.5", 15_500),  # pro 31000 x 15/30
        ("devices", 50, 200, "0.5", 5_000),  # lite 50 x 200 x 15/30
        ("devices", 50, 300, "0.5", 7_500),  # pro 50 x 300 x 15/30
        ("overage", 1, 3, "1", 3),  # 1 frame above pro's 2,000,000: one started thousand
        # no minimum: lite's 0 x 1/2 + pro's 50000 x 1/2 = 25000 < 33003
        ("sla_credit", 1, 33_000, "-0.1", -3_300),  # 10 % of 5000 + 15500 + 5000 + 7500
        ("tax", 1, 29_703, "0", 0),  # tax always shows, at 0 % too
    ]
    assert inv.total == 29_703 and inv.last_tier == "pro"


def test_a_cancellation_bills_to_the_day_before() -> None:
    # cancel on Mar 11: Mar 1-10 billed, 10/31 of March; 7 devices; tax 7.5 %
    inv = invoice([Start(D(2026, 1, 1), "lite"), Cancel(D(2026, 3, 11))], 2026, 3, 7, tax="7.5")
    assert rows(inv) == [
        ("base", 1, 10_000, "0.3225806452", 3_226),  # 10000 x 10/31 = 3225.81
        ("devices", 7, 200, "0.3225806452", 452),  # 7 x 200 x 10/31 = 451.61
        ("tax", 1, 3_678, "0.075", 276),  # 7.5 % of 3678 = 275.85
    ]
    assert inv.lines[0].factor == F(10, 31)
    assert inv.lines[0].to_json()["factor_exact"] == "10/31"
    assert inv.total == 3_954


def test_a_trial_crossing_a_month_end() -> None:
    # floor from Jan 20 with 20 trial days: Jan 20 .. Feb 8 free. 10 devices.
    events = [Start(D(2026, 1, 20), "floor", trial_days=20)]
    january = invoice(events, 2026, 1, 10, attainment=F(90))
    # a trial-only month: an invoice of 0, each line at 0, the minimum 0 (trial days count
    # 0 toward it); the credit line shows (the percent is above 0) at 0
    assert rows(january) == [
        ("base", 1, 1_000, "0", 0),
        ("devices", 10, 100, "0", 0),
        ("sla_credit", 1, 0, "-0.5", 0),
        ("tax", 1, 0, "0", 0),
    ]
    assert january.total == 0
    with pytest.raises(ValueError, match="only billed, non-trial days"):
        invoice(events, 2026, 1, 10, frames=1)
    # February (28 days): Feb 1-8 trial, Feb 9-28 billed (20 days, 20/28 = 5/7)
    february = invoice(events, 2026, 2, 10)
    assert rows(february) == [
        ("base", 1, 1_000, "0", 0),  # the trial span
        ("base", 1, 1_000, "0.7142857143", 714),  # 1000 x 5/7 = 714.29
        ("devices", 10, 100, "0", 0),
        ("devices", 10, 100, "0.7142857143", 714),  # 10 x 100 x 5/7 = 714.29
        # minimum 10000 x 5/7 = 7142.857 (the trial days 0), less 714 + 714: 5714.857
        ("minimum", 1, 5_715, "1", 5_715),
        ("tax", 1, 7_143, "0", 0),
    ]
    assert february.total == 7_143


def test_an_annual_term_takes_its_discount_off_base_and_devices_only() -> None:
    # lite annual: 10 % off. Full March, 120 devices, 1,000,999 frames
    inv = invoice([Start(D(2026, 1, 1), "lite", "annual")], 2026, 3, 120, 1_000_999)
    assert rows(inv) == [
        ("base", 1, 10_000, "0.9", 9_000),
        ("devices", 100, 200, "0.9", 18_000),
        ("devices", 20, 100, "0.9", 1_800),
        ("overage", 1, 5, "1", 5),  # not discounted
        ("tax", 1, 28_805, "0", 0),
    ]
    # started on Mar 22: 10/31 x 9/10 = 9/31, one exact factor
    inv = invoice([Start(D(2026, 3, 22), "lite", "annual")], 2026, 3, 0)
    assert inv.lines[0].factor == F(9, 31)
    assert inv.lines[0].amount == 2_903  # 10000 x 9/31 = 2903.23


def test_the_minimum_is_compared_with_the_discounted_lines_and_never_discounted() -> None:
    # pro annual (20 % off), minimum 50000; 10 devices, full March
    inv = invoice([Start(D(2026, 1, 1), "pro", "annual")], 2026, 3, 10)
    assert rows(inv) == [
        ("base", 1, 31_000, "0.8", 24_800),
        ("devices", 10, 300, "0.8", 2_400),
        ("minimum", 1, 22_800, "1", 22_800),  # 50000 - (24800 + 2400), not 50000 x 0.8
        ("tax", 1, 50_000, "0", 0),
    ]


def test_the_minimum_is_prorated_by_span_days() -> None:
    # pro from Mar 22: 10/31; minimum 50000 x 10/31 = 16129.03; base 31000 x 10/31 = 10000
    inv = invoice([Start(D(2026, 3, 22), "pro")], 2026, 3, 0)
    assert rows(inv) == [
        ("base", 1, 31_000, "0.3225806452", 10_000),
        ("minimum", 1, 6_129, "1", 6_129),  # 16129.03 - 10000
        ("tax", 1, 16_129, "0", 0),
    ]


@pytest.mark.parametrize(
    "attainment, percent, below",
    [
        (None, None, None),  # no attainment: met, no credit
        (F(100), None, None),
        (F(995, 10), None, None),  # at 99.5 exactly: no credit
        (F(994999, 10000), "10", "99.5"),  # just below
        (F(99), "10", "99.5"),  # at 99.0: below 99.5 only, not below 99.0
        (F(9899, 100), "25", "99.0"),
        (F(80), "50", "95.0"),
    ],
)
def test_a_credit_band_cites_attainment_and_band(attainment, percent, below) -> None:
    inv = invoice([Start(D(2026, 1, 1), "lite")], 2026, 3, 0, attainment=attainment)
    credit = inv.of_kind("sla_credit")
    if percent is None:
        assert credit == [] and inv.total == 10_000
        return
    assert len(credit) == 1 and credit[0].factor == -F(int(percent), 100)
    assert f"{percent} %" in credit[0].description and f"below {below} %" in credit[0].description
    assert shown(attainment) in credit[0].description
    assert inv.credit_percent == Decimal(percent) and inv.band == (Decimal(below), Decimal(percent))


def test_a_negative_half_cent_rounds_away_from_zero() -> None:
    # odd: base 12345, no devices. 10 % credit of 12345 = -1234.5 -> -1235; 50 % = -6172.5
    inv = invoice([Start(D(2026, 1, 1), "odd")], 2026, 3, 0, attainment=F(992, 10))
    assert rows(inv)[1] == ("sla_credit", 1, 12_345, "-0.1", -1_235)
    assert inv.total == 12_345 - 1_235 == 11_110
    inv = invoice([Start(D(2026, 1, 1), "odd")], 2026, 3, 0, attainment=F(90))
    assert rows(inv)[1] == ("sla_credit", 1, 12_345, "-0.5", -6_173)


def test_the_attainment_shown_is_rounded_down_as_the_sla_page_does() -> None:
    for value in (F(998996, 10000), F(995, 10), F(2, 3) * 100, F(100)):
        assert shown_attainment(value) == shown(value)


def test_a_month_without_spans_has_no_invoice() -> None:
    with pytest.raises(ValueError, match="no invoice"):
        invoice([Start(D(2026, 1, 1), "lite"), Cancel(D(2026, 3, 1))], 2026, 3, 5)


def test_no_amount_may_be_a_float() -> None:
    sp = [Span(D(2026, 3, 1), D(2026, 3, 31), "lite", "monthly", False)]
    kw = dict(billable_devices=1, frames=0, attainment=None, currency="USD")
    with pytest.raises(TypeError, match="never 19.0"):
        build_invoice(sp, TIERS, tax_rate=19.0, **kw)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="never 100.0"):
        build_invoice(sp, {"lite": Tier(base_fee=100.0)}, tax_rate=Decimal(0), **kw)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        build_invoice(sp, TIERS, tax_rate=Decimal(0), **{**kw, "attainment": 99.9})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="billable_devices"):
        build_invoice(sp, TIERS, tax_rate=Decimal(0), **{**kw, "billable_devices": 1.0})  # type: ignore[arg-type]


def test_spans_of_another_currency_or_out_of_order_are_refused() -> None:
    march = Span(D(2026, 3, 1), D(2026, 3, 10), "lite", "monthly", False)
    later = Span(D(2026, 3, 11), D(2026, 3, 31), "lite", "annual", False)
    kw = dict(billable_devices=1, frames=0, attainment=None, tax_rate=Decimal(0))
    with pytest.raises(ValueError, match="priced in USD, the tenant in EUR"):
        build_invoice([march], TIERS, currency="EUR", **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="date order"):
        build_invoice([later, march], TIERS, currency="USD", **kw)  # type: ignore[arg-type]
    april = Span(D(2026, 4, 1), D(2026, 4, 2), "lite", "monthly", False)
    with pytest.raises(ValueError, match="one month"):
        build_invoice([march, april], TIERS, currency="USD", **kw)  # type: ignore[arg-type]


def test_invoice_numbers_are_prefix_year_and_six_digits() -> None:
    assert invoice_number("UPT", 2026, 42) == "UPT-2026-000042"
    with pytest.raises(ValueError):
        invoice_number("UPT", 2026, 0)


def test_the_record_keeps_exact_factors_and_integer_amounts() -> None:
    inv = invoice(
        [Start(D(2026, 1, 1), "lite"), Change(D(2026, 3, 11), term="annual")],
        2026,
        3,
        3,
        attainment=F(99),
        tax="19",
    )
    record = inv.to_json()
    assert [li["kind"] for li in record["lines"]] == [
        "base",
        "base",
        "devices",
        "devices",
        "sla_credit",
        "tax",
    ]
    assert record["lines"][1]["factor_exact"] == "189/310"  # Mar 11-31: 21/31 x 9/10
    assert all(type(li["amount"]) is int for li in record["lines"])
    assert record["total"] == sum(li["amount"] for li in record["lines"])
