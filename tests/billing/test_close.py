"""Month close (service.md, "Invoices"; billing.md, "Closing a month"), on both engines: the
stored invoice is exactly ``build_invoice`` of the month's spans, billable devices, frames
and attainment; numbers are gapless in tenant creation order; a second close issues and
changes nothing; a closed month refuses subscription events and frames (also those a server
decoded before another process closed it); a month closes only once it has ended in every
zone and the checkpoint has passed it.

Hourly slots (``slot_s = 3600``) over March 2025 (31 days, 744 slots a device), so the
figures are worked out here by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from fractions import Fraction

import msgpack
import pytest

from core import ingest, zones
from core.billing.invoice import build_invoice
from core.billing.revenue import month_end_mrr
from core.billing.subscriptions import Cancel, Change, Start, history, spans
from core.store import Store
from core.times import NS_PER_S
from tests.billing.tiers import TIERS
from tests.support.hourly import DAY_S, HOUR_S, ingest_hours, month_s

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
YEAR, MONTH = 2025, 3
START, END = month_s(YEAR, MONTH, "UTC")
AFTER = (END + 2 * HOUR_S) * NS_PER_S  # now: two hours after March ended in UTC
ISSUE_YEAR = 2025
#: device a misses the ten hours 00:00-10:00 of March 10 (a billed, non-trial day)
DOWN = {START + 9 * DAY_S + h * HOUR_S for h in range(10)}
EVENTS = [
    Start(date(2025, 2, 20), "lite", trial_days=14),  # trial Feb 20 .. Mar 5
    Change(date(2025, 3, 16), tier="pro"),
    Change(date(2025, 3, 25), term="annual"),
]


def fleet(ts: int) -> list[tuple[str, object]]:
    frames: list[tuple[str, object]] = [("gw", ["b", ts])]
    if ts not in DOWN:
        frames.append(("gw", ["a", ts]))
    return frames


def frame(device: str, ts_s: int, seq: int) -> bytes:
    return msgpack.packb({"gateway": "late", "seq": seq, "frames": [[device, ts_s]]})


def seeded(tmp_path, engine, *, tz: str = "UTC") -> tuple[Store, int]:
    store = Store(tmp_path / "db", engine=engine, tiers=TIERS)
    tenant = store.add_tenant("acme", slot_s=3600, tax_rate="19", tz=tz)
    for event in EVENTS:
        store.add_subscription_event(tenant.id, event, "test", 0)
    ingest_hours(store, tenant.id, START, END, fleet)
    store.checkpoint(AFTER)
    return store, tenant.id


def test_close_issues_exactly_the_invoice_of_the_billing_rules(tmp_path, engine) -> None:
    store, tid = seeded(tmp_path, engine)
    with store:
        issued = store.close_month(YEAR, MONTH, AFTER, prefix="INV")
        h = history(EVENTS, TIERS, "USD")
        billed = spans(h, YEAR, MONTH)
        # non-trial days Mar 6..31: 26 days of 48 frames, less a's 10 missing hours
        frames = 26 * 48 - 10
        # a: 744 - 10 up, 10 down; b: 744 up
        attainment = Fraction(100 * (2 * 744 - 10), 2 * 744)
        expected = build_invoice(
            billed,
            TIERS,
            billable_devices=2,
            frames=frames,
            attainment=attainment,
            tax_rate=Decimal("19"),
            currency="USD",
        )
        assert len(issued) == 1
        record = issued[0]
        assert record["number"] == f"INV-{ISSUE_YEAR}-000001"
        assert record["lines"] == [li.to_json() for li in expected.lines]
        for key in ("subtotal", "tax", "total", "frames", "billable_devices", "attainment"):
            assert record[key] == getattr(expected, key), key
        assert record["last_tier"] == "pro" and record["month"] == "2025-03"
        assert record["computed_from"]["billable_devices"] == ["b", "a"]
        assert record["computed_from"]["attainment_exact"] == str(attainment)
        assert record["issued_ns"] == AFTER
        assert store.invoice(record["number"]) == record
        assert store.invoices(tid) == [record]
        assert store.month_invoices(YEAR, MONTH) == [record]
        kept = store.kept_mrr(tid)
        assert kept.mrr == {(YEAR, MONTH): month_end_mrr(h, TIERS, YEAR, MONTH, 2)}
        assert kept.devices == {(YEAR, MONTH): 2}
        assert store.tenants[tid].closed_before_ns == END * NS_PER_S


def test_numbers_are_gapless_in_tenant_creation_order(tmp_path, engine) -> None:
    with Store(tmp_path / "db", engine=engine, tiers=TIERS) as store:
        first = store.add_tenant("zeta")  # created first: invoiced first, whatever its name
        idle = store.add_tenant("idle")  # no subscription: no invoice
        second = store.add_tenant("alpha", tz="Europe/Berlin")
        ended = store.add_tenant("ended")  # cancelled before March: no invoice
        store.add_subscription_event(second.id, Start(date(2025, 3, 10), "lite"))
        store.add_subscription_event(first.id, Start(date(2025, 3, 31), "odd", trial_days=5))
        store.add_subscription_event(ended.id, Start(date(2025, 1, 1), "lite"))
        store.add_subscription_event(ended.id, Cancel(date(2025, 2, 1)))
        later = (END + DAY_S) * NS_PER_S
        store.checkpoint(later)
        march = store.close_month(YEAR, MONTH, later, prefix="ACME")
        assert [(r["tenant_name"], r["number"]) for r in march] == [
            ("zeta", "ACME-2025-000001"),  # a trial-only month: an invoice of 0
            ("alpha", "ACME-2025-000002"),
        ]
        assert march[0]["total"] == 0
        assert idle.id not in {r["tenant"] for r in march}
        april_end = zones.month_bounds(2025, 4, "Europe/Berlin")[1] + DAY_S * NS_PER_S
        store.checkpoint(april_end)
        april = store.close_month(2025, 4, april_end, prefix="ACME")
        assert [r["number"] for r in april] == ["ACME-2025-000003", "ACME-2025-000004"]
        assert store.closed_months()["2025-04"]["numbers"] == [r["number"] for r in april]
        # a new year of issue starts again at 1
        next_year = zones.month_bounds(2026, 1, "UTC")[0] + DAY_S * NS_PER_S
        store.checkpoint(next_year)
        may = store.close_month(2025, 5, next_year, prefix="ACME")
        assert [r["number"] for r in may] == ["ACME-2026-000001", "ACME-2026-000002"]


def test_closing_twice_issues_nothing_and_changes_nothing(tmp_path, engine) -> None:
    store, tid = seeded(tmp_path, engine)
    with store:
        issued = store.close_month(YEAR, MONTH, AFTER)

        def state() -> tuple:
            return (
                store.invoices(tid),
                store.month_invoices(YEAR, MONTH),
                store.kept_mrr(tid),
                store.closed_months(),
                store.tenants[tid].closed_before_ns,
            )

        before = state()
        assert store.close_month(YEAR, MONTH, AFTER + 10 * DAY_S * NS_PER_S) == []
        assert store.close_month(YEAR, MONTH, AFTER, prefix="OTHER") == []
        assert state() == before
        assert before[0] == issued


def test_a_subscription_event_dated_in_a_closed_month_is_refused(tmp_path, engine) -> None:
    store, tid = seeded(tmp_path, engine)
    with store:
        store.close_month(YEAR, MONTH, AFTER)
        with pytest.raises(ValueError, match=r"2025-03-31 lies in 2025-03, closed for acme"):
            store.add_subscription_event(tid, Cancel(date(2025, 3, 31)))
        assert len(store.subscription(tid).events) == 3  # nothing recorded
        store.add_subscription_event(tid, Cancel(date(2025, 4, 1)))  # April is open
        assert store.subscription(tid).events[-1] == Cancel(date(2025, 4, 1))


def test_frames_in_a_closed_month_are_rejected(tmp_path, engine) -> None:
    store, tid = seeded(tmp_path, engine)
    with store:
        store.close_month(YEAR, MONTH, AFTER)
        late = store.ingest(tid, frame("a", END - 1800, 1), AFTER)
        assert (late.accepted, late.rejected) == (0, 1)
        assert late.errors == [
            {"index": 0, "reason": "ts falls in a month whose invoices are issued"}
        ]
        assert store.ingest(tid, frame("a", END + 60, 2), AFTER).accepted == 1


CLOSE_ELSEWHERE = """
import sys
from core.store import Store
from tests.billing.tiers import TIERS
with Store(sys.argv[1], tiers=TIERS) as store:
    print(len(store.close_month(2025, 3, int(sys.argv[2]))))
"""


def test_a_close_by_another_process_binds_a_running_writer(tmp_path, engine) -> None:
    """The server caches tenants: a batch it decoded (or decodes) with the cut it knew before
    another process closed the month is judged again at commit, against the stored cut."""
    store, tid = seeded(tmp_path, engine)
    with store:
        rollup = store.rollups[tid]
        stale = store.tenants[tid].closed_before_ns
        assert stale == 0
        before = ingest.decode(rollup, frame("a", END - 1800, 1), AFTER, closed_before_ns=stale)
        mixed = msgpack.packb(
            {"gateway": "late", "seq": 2, "frames": [["new", END - 60], ["a", END + 60]]}
        )
        closed = subprocess.run(
            [sys.executable, "-c", CLOSE_ELSEWHERE, str(tmp_path / "db"), str(AFTER)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
            check=True,
        )
        assert closed.stdout.strip() == "1"
        assert store.tenants[tid].closed_before_ns == 0  # this handle has not looked yet
        result = store.commit([(tid, before)], AFTER)[0]
        assert (result.accepted, result.rejected) == (0, 1)
        assert result.errors[0]["reason"] == "ts falls in a month whose invoices are issued"
        assert store.tenants[tid].closed_before_ns == END * NS_PER_S  # picked up on the way
        # decoded with the stale cut: one frame in the closed month, of a device never seen
        mixed_batch = ingest.decode(rollup, mixed, AFTER, closed_before_ns=0)
        assert mixed_batch.accepted == 2
        result = store.commit([(tid, mixed_batch)], AFTER)[0]
        assert (result.accepted, result.rejected) == (1, 1)
        assert "new" not in store.device_ids(tid)  # no device for a frame turned away
        store.checkpoint(AFTER + HOUR_S * NS_PER_S)
        assert store.frames_between(tid, START * NS_PER_S, END * NS_PER_S) == 31 * 48 - 10


def test_a_month_closes_once_ended_in_every_zone_and_checkpointed(tmp_path, engine) -> None:
    with Store(tmp_path / "db", engine=engine, tiers=TIERS) as store:
        akl = store.add_tenant("akl", tz="Pacific/Auckland", slot_s=3600)
        la = store.add_tenant("la", tz="America/Los_Angeles", slot_s=3600)
        for tenant in (akl, la):
            store.add_subscription_event(tenant.id, Start(date(2025, 3, 1), "lite"))
        akl_end = zones.month_bounds(YEAR, MONTH, "Pacific/Auckland")[1]
        la_end = zones.month_bounds(YEAR, MONTH, "America/Los_Angeles")[1]
        assert akl_end < END * NS_PER_S < la_end  # 2025-03-31T11:00Z, 2025-04-01T07:00Z
        store.checkpoint(la_end + 1)
        with pytest.raises(ValueError, match=r"has not ended for la \(America/Los_Angeles\)"):
            store.close_month(YEAR, MONTH, la_end - 1)
        store.checkpoint(la_end - 1)  # a cut before LA's month end
        with pytest.raises(ValueError, match="wait for the server's next checkpoint"):
            store.close_month(YEAR, MONTH, la_end + HOUR_S * NS_PER_S)
        assert store.closed_months() == {}
        store.checkpoint(la_end + HOUR_S * NS_PER_S)
        now = la_end + 2 * HOUR_S * NS_PER_S
        assert [r["tenant_name"] for r in store.close_month(YEAR, MONTH, now)] == ["akl", "la"]
        assert store.tenants[akl.id].closed_before_ns == akl_end
        assert store.tenants[la.id].closed_before_ns == la_end
        s = NS_PER_S
        # Auckland: 23:30 of its March 31 is closed, 00:30 of its April 1 is open
        rejected = store.ingest(akl.id, frame("x", akl_end // s - 1800, 1), now)
        assert rejected.rejected == 1
        assert store.ingest(akl.id, frame("x", akl_end // s + 1800, 2), now).accepted == 1
        # Los Angeles: the same instant (after Auckland's end) is still its March: closed
        assert store.ingest(la.id, frame("y", akl_end // s + 1800, 1), now).rejected == 1
