"""Month close over random subscription histories and fleets (Hypothesis): every invoice's
total is its lines', no amount is a float, numbers are gapless in tenant order, and closing
the same month twice issues and changes nothing."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.store import Store
from core.times import NS_PER_S
from tests.billing.tiers import TIERS, USD_TIERS
from tests.support.hourly import DAY_S, HOUR_S, ingest_hours, month_s
from tests.support.strategies import subscription_events

YEAR, MONTH = 2025, 3
START, END = month_s(YEAR, MONTH, "UTC")
AFTER = (END + 2 * HOUR_S) * NS_PER_S  # past March in UTC and in Kolkata (+05:30)
ZONES = ("UTC", "Asia/Kolkata")


@st.composite
def tenants(draw: st.DrawFn) -> list[tuple[list[object], int, set[int]]]:
    """Per tenant: a history, a device count and the hours its first device misses."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        events = draw(subscription_events(USD_TIERS, date(2025, 1, 20), date(2025, 3, 31)))
        devices = draw(st.integers(0, 3))
        down = set(draw(st.lists(st.integers(0, 31 * 24 - 1), max_size=30)))
        out.append((events, devices, down))
    return out


def snapshot(store: Store, ids: list[int]) -> tuple[object, ...]:
    return (
        [store.invoices(t) for t in ids],
        [store.kept_mrr(t) for t in ids],
        store.closed_months(),
        [store.tenants[t].closed_before_ns for t in ids],
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolio=tenants())
def test_close_twice_changes_nothing_and_totals_are_their_lines(portfolio) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "db", tiers=TIERS) as store:
        ids = []
        for k, (events, devices, down) in enumerate(portfolio):
            tenant = store.add_tenant(f"t{k}", slot_s=3600, tz=ZONES[k % 2])
            ids.append(tenant.id)
            for event in events:
                store.add_subscription_event(tenant.id, event, "test", 0)

            def frames(ts: int, devices: int = devices, down: set[int] = down) -> list:
                hour = (ts - START) // HOUR_S
                return [
                    ("gw", [f"d{i}", ts]) for i in range(devices) if not (i == 0 and hour in down)
                ]

            if devices:
                ingest_hours(store, tenant.id, START - DAY_S, END, frames)
        store.checkpoint(AFTER)
        issued = store.close_month(YEAR, MONTH, AFTER, prefix="INV")
        for invoice in issued:
            amounts = [line["amount"] for line in invoice["lines"]]
            assert all(type(a) is int for a in amounts)
            assert invoice["total"] == sum(amounts)
        numbers = [invoice["number"] for invoice in issued]
        assert numbers == [f"INV-2025-{n:06d}" for n in range(1, len(issued) + 1)]
        assert [invoice["tenant"] for invoice in issued] == sorted(i["tenant"] for i in issued)
        before = snapshot(store, ids)
        assert store.close_month(YEAR, MONTH, AFTER + NS_PER_S, prefix="INV") == []
        assert snapshot(store, ids) == before
