"""Subscriptions (service.md, "Subscriptions", "Terms and trials"): a dated history is
checked as it is recorded, and a month's billed spans follow it to the day."""

from __future__ import annotations

from datetime import date

import pytest

from core import zones
from core.billing.subscriptions import (
    Cancel,
    Change,
    History,
    Span,
    Start,
    State,
    days_in_month,
    history,
    spans,
    state_on,
)
from tests.billing.tiers import TIERS

D = date


def usd(*events: object) -> History:
    return history(events, TIERS, "USD")  # type: ignore[arg-type]


# --- the history is checked as it is recorded -----------------------------------------------


@pytest.mark.parametrize(
    "events, message",
    [
        ([Change(D(2026, 3, 1), tier="pro")], "no subscription to change"),
        ([Cancel(D(2026, 3, 1))], "no subscription to cancel"),
        (
            [Start(D(2026, 3, 1), "lite"), Cancel(D(2026, 3, 5)), Change(D(2026, 3, 6), "pro")],
            "no subscription to change (after a cancel)",
        ),
        (
            [Start(D(2026, 3, 1), "lite"), Cancel(D(2026, 3, 5)), Cancel(D(2026, 3, 6))],
            "no subscription to cancel",
        ),
        ([Start(D(2026, 3, 1), "lite"), Start(D(2026, 3, 2), "pro")], "already subscribed"),
        ([Start(D(2026, 3, 5), "lite"), Change(D(2026, 3, 4), "pro")], "recorded in order"),
        ([Start(D(2026, 3, 1), "gold")], "no tier 'gold'"),
        ([Start(D(2026, 3, 1), "euro")], "priced in EUR, the tenant in USD"),
        ([Start(D(2026, 3, 1), "lite"), Change(D(2026, 3, 2), "euro")], "priced in EUR"),
        ([Start(D(2026, 3, 1), "lite", "yearly")], 'term must be "monthly" or "annual"'),  # type: ignore[arg-type]
        ([Start(D(2026, 3, 1), "lite", trial_days=-1)], "trial_days must be an integer 0"),
        ([Start(D(2026, 3, 1), "lite", trial_days=1.0)], "trial_days must be an integer 0"),  # type: ignore[arg-type]
        ([Start(D(2026, 3, 1), "lite"), Change(D(2026, 3, 2))], "a new tier or term"),
        ([Start(D(2026, 3, 1), "lite"), Change(D(2026, 3, 2), "lite")], "changes nothing"),
    ],
)
def test_a_history_that_cannot_be_is_refused_saying_why(events, message) -> None:
    with pytest.raises(ValueError) as info:
        usd(*events)
    assert message in str(info.value)


def test_the_error_names_the_event() -> None:
    with pytest.raises(ValueError, match=r"event 1 \(change on 2026-03-06\)"):
        usd(Start(D(2026, 3, 1), "lite"), Change(D(2026, 3, 6), "gold"))


def test_a_start_after_a_cancel_is_a_reactivation() -> None:
    h = usd(Start(D(2026, 1, 1), "lite"), Cancel(D(2026, 2, 1)), Start(D(2026, 3, 10), "pro"))
    assert spans(h, 2026, 2) == []  # cancelled on Feb 1: January was its last month
    assert spans(h, 2026, 3) == [Span(D(2026, 3, 10), D(2026, 3, 31), "pro", "monthly", False)]


def test_recording_one_event_at_a_time_checks_it_too() -> None:
    h = History("USD").then(Start(D(2026, 3, 1), "lite"), TIERS)
    with pytest.raises(ValueError, match="priced in EUR"):
        h.then(Change(D(2026, 3, 2), "euro"), TIERS)
    assert h.then(Cancel(D(2026, 3, 2)), TIERS).events[-1] == Cancel(D(2026, 3, 2))


# --- spans ----------------------------------------------------------------------------------


def test_a_change_takes_effect_at_midnight_of_its_date() -> None:
    h = usd(Start(D(2026, 2, 1), "lite"), Change(D(2026, 4, 16), tier="pro"))
    assert spans(h, 2026, 4) == [
        Span(D(2026, 4, 1), D(2026, 4, 15), "lite", "monthly", False),
        Span(D(2026, 4, 16), D(2026, 4, 30), "pro", "monthly", False),
    ]


def test_a_cancel_on_d_bills_up_to_d_minus_one() -> None:
    h = usd(Start(D(2026, 1, 1), "lite"), Cancel(D(2026, 3, 11)))
    assert spans(h, 2026, 3) == [Span(D(2026, 3, 1), D(2026, 3, 10), "lite", "monthly", False)]
    # a cancel on the 1st of the next month bills the whole month, and nothing after
    h = usd(Start(D(2026, 1, 1), "lite"), Cancel(D(2026, 4, 1)))
    assert [s.days for s in spans(h, 2026, 3)] == [31]
    assert spans(h, 2026, 4) == []
    # a cancel on the 1st: nothing of that month
    h = usd(Start(D(2026, 1, 1), "lite"), Cancel(D(2026, 3, 1)))
    assert spans(h, 2026, 3) == []


def test_events_on_one_date_apply_in_the_order_recorded() -> None:
    # start and upgrade on one date: the start's tier bills no day
    h = usd(Start(D(2026, 3, 10), "lite"), Change(D(2026, 3, 10), tier="pro"))
    assert spans(h, 2026, 3) == [Span(D(2026, 3, 10), D(2026, 3, 31), "pro", "monthly", False)]
    # start then cancel on one date: no day at all, no invoice
    h = usd(Start(D(2026, 3, 10), "lite"), Cancel(D(2026, 3, 10)))
    assert spans(h, 2026, 3) == []
    # cancel and restart on one date: no gap, and equal days make one span
    h = usd(Start(D(2026, 3, 1), "lite"), Cancel(D(2026, 3, 10)), Start(D(2026, 3, 10), "lite"))
    assert spans(h, 2026, 3) == [Span(D(2026, 3, 1), D(2026, 3, 31), "lite", "monthly", False)]


def test_trial_days_run_from_the_start_whatever_changes_follow() -> None:
    # 20 trial days from Jan 20: Jan 20 .. Feb 8, across the month end and an upgrade
    h = usd(Start(D(2026, 1, 20), "lite", trial_days=20), Change(D(2026, 2, 5), tier="pro"))
    assert spans(h, 2026, 1) == [Span(D(2026, 1, 20), D(2026, 1, 31), "lite", "monthly", True)]
    assert spans(h, 2026, 2) == [
        Span(D(2026, 2, 1), D(2026, 2, 4), "lite", "monthly", True),
        Span(D(2026, 2, 5), D(2026, 2, 8), "pro", "monthly", True),
        Span(D(2026, 2, 9), D(2026, 2, 28), "pro", "monthly", False),
    ]
    assert state_on(h, D(2026, 2, 8)) == State("pro", "monthly", True)
    assert state_on(h, D(2026, 2, 9)) == State("pro", "monthly", False)
    assert state_on(h, D(2026, 1, 19)) is None


def test_a_trial_ends_with_a_cancel_and_a_reactivation_brings_its_own() -> None:
    h = usd(
        Start(D(2026, 3, 1), "lite", trial_days=30),
        Cancel(D(2026, 3, 5)),
        Start(D(2026, 3, 20), "lite", trial_days=0),
    )
    assert spans(h, 2026, 3) == [
        Span(D(2026, 3, 1), D(2026, 3, 4), "lite", "monthly", True),
        Span(D(2026, 3, 20), D(2026, 3, 31), "lite", "monthly", False),
    ]


def test_a_term_change_splits_the_span() -> None:
    h = usd(Start(D(2026, 1, 1), "lite"), Change(D(2026, 3, 21), term="annual"))
    assert [(s.first.day, s.last.day, s.term) for s in spans(h, 2026, 3)] == [
        (1, 20, "monthly"),
        (21, 31, "annual"),
    ]


def test_days_in_month_is_the_local_calendars() -> None:
    assert [days_in_month(2026, m) for m in (1, 2, 3, 4)] == [31, 28, 31, 30]
    assert days_in_month(2028, 2) == 29
    # Berlin's March 2026 has a 23-hour day; it is still 31 days
    start, end = zones.month_bounds(2026, 3, "Europe/Berlin")
    assert (end - start) // 10**9 == 31 * 86_400 - 3_600
    assert days_in_month(2026, 3) == 31


def test_a_tenant_whose_month_starts_on_another_utc_day_is_billed_by_its_local_dates() -> None:
    # Auckland's March 2026 begins at 2026-02-28T11:00Z: a start at 11:30Z on Feb 28 (UTC)
    # is 00:30 on Mar 1 local, so February has no billed day and March is billed in full
    tz = "Pacific/Auckland"
    start_ns, end_ns = zones.month_bounds(2026, 3, tz)
    assert zones.iso_local(start_ns, "UTC") == "2026-02-28T11:00:00+00:00"
    started = zones.parse_instant("2026-02-28T11:30:00Z")
    day = zones.local_date(started, tz)
    assert day == D(2026, 3, 1)
    h = usd(Start(day, "lite"))
    assert spans(h, 2026, 2) == []
    assert spans(h, 2026, 3) == [Span(D(2026, 3, 1), D(2026, 3, 31), "lite", "monthly", False)]
    # the local March holds 31 local days (its UTC instants touch Feb 28 .. Mar 31)
    assert len(zones.local_days(start_ns, end_ns, tz)) == days_in_month(2026, 3) == 31
