"""Properties over random subscription histories and fleets: every invoice adds up to its
lines, holds no float, rounds each line once and comes out the same twice; spans cover
exactly the subscribed days; the month's movements reconcile, per currency, every month."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.billing.invoice import KINDS, build_invoice, round_half_up
from core.billing.revenue import TenantMonths, month_end_mrr, movements, mrr_total, retention
from core.billing.subscriptions import days_in_month, history, spans, state_on
from core.tiers import Tier
from tests.billing.tiers import TIERS, USD_TIERS
from tests.support.strategies import (
    ATTAINMENT,
    BILLABLE_DEVICES,
    BILLING_MONTHS,
    FRAMES,
    TAX_RATES,
    subscription_events,
)

FIRST, LAST = date(2025, 10, 15), date(2026, 4, 30)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def all_ints(*values: object) -> bool:
    return all(type(v) is int for v in values)


@PROPERTY
@given(
    events=subscription_events(USD_TIERS, FIRST, LAST),
    devices=BILLABLE_DEVICES,
    frames=FRAMES,
    attainment=ATTAINMENT,
    tax=TAX_RATES,
)
def test_every_invoice_adds_up_to_its_lines_with_no_float(
    events, devices, frames, attainment, tax
) -> None:
    h = history(events, TIERS, "USD")
    for year, month in BILLING_MONTHS:
        month_spans = spans(h, year, month)
        days = [date(year, month, 1) + timedelta(d) for d in range(days_in_month(year, month))]
        # spans cover exactly the days subscribed (trial or billed), in order, never touching
        covered = [s.first + timedelta(d) for s in month_spans for d in range(s.days)]
        assert covered == [d for d in days if state_on(h, d) is not None]
        for span in month_spans:
            assert all(state_on(h, span.first + timedelta(d)) is not None for d in range(span.days))
        if not month_spans:
            continue
        args = dict(
            billable_devices=devices,
            # frames of billed, non-trial days: none in a trial-only month
            frames=0 if all(s.trial for s in month_spans) else frames,
            attainment=attainment,
            tax_rate=Decimal(tax),
            currency="USD",
        )
        inv = build_invoice(month_spans, TIERS, **args)  # type: ignore[arg-type]
        assert inv == build_invoice(month_spans, TIERS, **args)  # type: ignore[arg-type]
        assert all_ints(inv.subtotal, inv.tax, inv.total)
        assert inv.total == sum(li.amount for li in inv.lines)
        assert inv.subtotal == sum(li.amount for li in inv.lines if li.kind != "tax")
        kinds = [li.kind for li in inv.lines]
        assert kinds == sorted(kinds, key=KINDS.index)
        assert kinds.count("base") == len(month_spans) and kinds[-1] == "tax"
        for li in inv.lines:
            assert all_ints(li.quantity, li.unit_price, li.amount)
            assert isinstance(li.factor, Fraction)
            assert li.amount == round_half_up(li.quantity * li.unit_price * li.factor)
        # the credit is never more than the lines it is a percent of, and the total never
        # below 0
        assert inv.total >= 0
        if all(s.trial for s in month_spans):
            assert inv.total == 0


# --- movements reconcile --------------------------------------------------------------------

EURO_TIERS: dict[str, Tier] = {
    "euro": TIERS["euro"],
    "euro_plus": dataclasses.replace(TIERS["euro"], base_fee=35_000, minimum=40_000),
}
ALL_TIERS = {**TIERS, **EURO_TIERS}


@st.composite
def portfolio(draw: st.DrawFn) -> list[TenantMonths]:
    tenants = []
    for i in range(draw(st.integers(1, 6))):
        currency = draw(st.sampled_from(["USD", "USD", "EUR"]))
        names = USD_TIERS if currency == "USD" else sorted(EURO_TIERS)
        events = draw(subscription_events(names, FIRST, LAST))
        h = history(events, ALL_TIERS, currency)
        mrr, devices = {}, {}
        for year, month in BILLING_MONTHS:
            n = draw(BILLABLE_DEVICES)
            devices[(year, month)] = n
            mrr[(year, month)] = month_end_mrr(h, ALL_TIERS, year, month, n)
        tenants.append(TenantMonths(f"t{i}", currency, mrr, devices))
    return tenants


@PROPERTY
@given(tenants=portfolio())
def test_movements_reconcile_every_month_per_currency(tenants) -> None:
    for year, month in BILLING_MONTHS:
        found = movements(tenants, year, month)
        assert set(found) == {t.currency for t in tenants}
        ends = mrr_total(tenants, year, month)
        for currency, m in found.items():
            assert m.reconciles, m
            assert m.end == ends[currency]
            assert min(m.new, m.reactivation, m.expansion, m.contraction, m.churn) >= 0
            assert all_ints(m.start, m.new, m.reactivation, m.expansion, m.contraction, m.churn)


@PROPERTY
@given(tenants=portfolio(), back=st.integers(1, 5))
def test_gross_retention_never_exceeds_one_nor_net_retention(tenants, back) -> None:
    for r in retention(tenants, 2026, 4, months=back).values():
        if r.then == 0:
            assert r.net is None and r.gross is None and r.cohort == 0
            continue
        assert r.gross is not None and r.net is not None
        assert 0 <= r.gross <= 1 and r.gross <= r.net
