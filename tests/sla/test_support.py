"""Support time and incident compliance (core.support), counted by hand.

Every instant is written in UTC with the local time and offset that derive it. The 2026
transitions used: Europe/Berlin springs forward on Sun 2026-03-29 at 01:00Z (02:00 CET to
03:00 CEST) and falls back on Sun 2026-10-25 at 01:00Z (03:00 CEST to 02:00 CET);
America/New_York on Sun 2026-03-08 at 07:00Z (02:00 EST to 03:00 EDT) and Sun 2026-11-01 at
06:00Z (02:00 EDT to 01:00 EST). March 2026 starts on a Sunday (the 6th is a Friday).
"""

from __future__ import annotations

import calendar
import re
import time as clock
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.incidents import Incident
from core.support import (
    Compliance,
    Tally,
    deadline_ns,
    month_compliance,
    support_minutes,
    support_seconds,
    target_status,
)
from core.tiers import DEFAULT_TIERS, SupportHours
from core.times import NS_PER_S
from core.zones import day_bounds, local_to_ns, zone
from tests.support.strategies import TENANT_ZONES, support_hours

S = NS_PER_S
MIN = 60 * S
HOUR = 60 * MIN
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
OFFICE = SupportHours.parse("Mon-Fri 08:00-18:00")
ALWAYS = SupportHours.parse("24x7")


def utc(text: str) -> int:
    """``2026-03-06T16:30Z`` as Unix ns (calendar.timegm: no zone database involved)."""
    return calendar.timegm(datetime.fromisoformat(text).timetuple()) * S


def minutes(start: int, end: int, hours: SupportHours, tz: str = BERLIN) -> Fraction:
    return support_minutes(start, end, hours, tz)


# -- support_seconds -------------------------------------------------------------------------


def test_24x7_is_plain_elapsed_time_rounded_down_to_seconds() -> None:
    # 10:00Z to 11:30:00.999999999Z: 5,400 s and a fraction, rounded down
    assert (
        support_seconds(utc("2026-03-06T10:00Z"), utc("2026-03-06T11:30Z") + S - 1, ALWAYS, "UTC")
        == 5_400
    )
    # across Berlin's spring-forward: 2026-03-28 23:00Z to 03-29 23:00Z is 24 h elapsed
    assert (
        support_seconds(utc("2026-03-28T23:00Z"), utc("2026-03-29T23:00Z"), ALWAYS, BERLIN)
        == 86_400
    )


def test_an_empty_or_reversed_span_is_zero() -> None:
    t = utc("2026-03-09T09:00Z")
    assert support_seconds(t, t, ALWAYS, BERLIN) == 0
    assert support_seconds(t, t - HOUR, OFFICE, BERLIN) == 0


def test_minutes_are_exact_fractions_of_seconds() -> None:
    # 90 s = 3/2 minutes, never a float
    t = utc("2026-03-09T09:00Z")
    assert minutes(t, t + 90 * S, OFFICE) == Fraction(3, 2)


def test_office_hours_across_a_weekend() -> None:
    # Fri 2026-03-06 17:30 CET (+1) = 16:30Z to Mon 03-09 08:45 CET = 07:45Z:
    # Fri 17:30-18:00 = 30, Sat and Sun unstaffed, Mon 08:00-08:45 = 45 -> 75 minutes
    assert minutes(utc("2026-03-06T16:30Z"), utc("2026-03-09T07:45Z"), OFFICE) == 75


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Sat 2026-03-07 12:00-13:00 CET: no staffed minute at all
        ("2026-03-07T11:00Z", "2026-03-07T12:00Z", 0),
        # Mon 2026-03-09 07:00-07:59 CET: before the 08:00 opening
        ("2026-03-09T06:00Z", "2026-03-09T06:59Z", 0),
        # Sun 20:00 CET to Mon 09:00 CET (08:00Z): only Mon 08:00-09:00 = 60
        ("2026-03-08T19:00Z", "2026-03-09T08:00Z", 60),
        # Fri 17:30 to Fri 20:00 CET: only 17:30-18:00 = 30, the end lies after closing
        ("2026-03-06T16:30Z", "2026-03-06T19:00Z", 30),
        # Mon 18:00 CET to Tue 08:00 CET: closing to opening, the close is exclusive = 0
        ("2026-03-09T17:00Z", "2026-03-10T07:00Z", 0),
        # Mon 06:00 to Tue 20:00 CET: two whole days, 2 x 600 = 1,200
        ("2026-03-09T05:00Z", "2026-03-10T19:00Z", 1_200),
    ],
)
def test_a_start_or_end_outside_support_hours_counts_from_the_opening(
    start: str, end: str, expected: int
) -> None:
    assert minutes(utc(start), utc(end), OFFICE) == expected


def test_whole_local_days_across_spring_forward_and_fall_back_are_23_and_25_hours() -> None:
    # "Mon-Sun 00:00-24:00" is 24x7: Berlin 2026-03-29 runs 03-28 23:00Z to 03-29 22:00Z = 23 h,
    # 2026-10-25 runs 10-24 22:00Z to 10-25 23:00Z = 25 h
    whole_week = SupportHours.parse("Mon-Sun 00:00-24:00")
    sunday = SupportHours.parse("Sun 00:00-24:00")  # the same day walked as staffed hours
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        start, end = day_bounds(day, BERLIN)
        for support in (whole_week, sunday):
            assert support_seconds(start, end, support, BERLIN) == hours * 3_600
    # the week Mon 03-23 to Mon 03-30 00:00 local, Sundays only: the short Sunday, 23 h
    week = (utc("2026-03-22T23:00Z"), utc("2026-03-29T22:00Z"))
    assert support_seconds(*week, sunday, BERLIN) == 23 * 3_600
    assert support_seconds(*week, whole_week, BERLIN) == (7 * 24 - 1) * 3_600


def test_hours_holding_the_change_are_their_elapsed_length() -> None:
    # New York Sun 2026-03-08 01:00 EST (-5) = 06:00Z to 04:00 EDT (-4) = 08:00Z: 2 h, not 3
    night = SupportHours.parse("Sun 01:00-04:00")
    assert (
        support_seconds(utc("2026-03-08T00:00Z"), utc("2026-03-09T00:00Z"), night, NEW_YORK)
        == 7_200
    )
    # Sun 2026-11-01 01:00 is ambiguous: its first occurrence, 01:00 EDT = 05:00Z;
    # 04:00 EST (-5) = 09:00Z: 4 h
    assert (
        support_seconds(utc("2026-11-01T00:00Z"), utc("2026-11-02T00:00Z"), night, NEW_YORK)
        == 14_400
    )
    # Berlin Sun 2026-03-29 02:30 does not exist: open from 03:00 CEST (01:00Z) to 04:00 CEST
    # (02:00Z): 1 h
    gap = SupportHours.parse("Sun 02:30-04:00")
    assert support_seconds(utc("2026-03-28T12:00Z"), utc("2026-03-29T12:00Z"), gap, BERLIN) == 3_600


def test_a_wrapping_day_range_covers_friday_to_monday() -> None:
    # "Fri-Mon 09:00-17:00" in Berlin (CET), Thu 2026-03-05 00:00 to Wed 03-11 00:00 local:
    # Fri, Sat, Sun and Mon, 8 h each = 32 h; Thu, Tue are not staffed
    hours = SupportHours.parse("Fri-Mon 09:00-17:00")
    assert hours.days == frozenset({4, 5, 6, 0})
    span = (utc("2026-03-04T23:00Z"), utc("2026-03-10T23:00Z"))
    assert support_seconds(*span, hours, BERLIN) == 32 * 3_600
    # Sun 16:00 CET (15:00Z) to Tue 12:00 CET: Sun 16-17 = 60 + Mon 09-17 = 480 -> 540
    assert minutes(utc("2026-03-08T15:00Z"), utc("2026-03-10T11:00Z"), hours) == 540


def test_hours_ending_at_24_00_run_to_midnight() -> None:
    # "Mon-Fri 20:00-24:00" in Berlin: Fri 2026-03-06 22:00 CET (21:00Z) to Mon 03-09 21:00
    # CET (20:00Z): Fri 22:00-24:00 = 120, Mon 20:00-21:00 = 60 -> 180 minutes
    late = SupportHours.parse("Mon-Fri 20:00-24:00")
    assert minutes(utc("2026-03-06T21:00Z"), utc("2026-03-09T20:00Z"), late) == 180
    # up to the midnight itself (Fri 24:00 = Sat 00:00 CET = Fri 23:00Z) and no further
    assert minutes(utc("2026-03-06T19:00Z"), utc("2026-03-06T23:00Z"), late) == 240
    assert minutes(utc("2026-03-06T19:00Z"), utc("2026-03-07T23:00Z"), late) == 240


def test_an_incident_months_long_walks_days_not_minutes() -> None:
    # Mon 2026-01-05 00:00 CET to Mon 2026-07-06 00:00 CEST: 26 weeks of 5 x 10 h = 1,300 h
    # (the DST change falls on a Sunday night, outside the hours)
    start, end = utc("2026-01-04T23:00Z"), utc("2026-07-05T22:00Z")
    began = clock.perf_counter()
    assert support_seconds(start, end, OFFICE, BERLIN) == 1_300 * 3_600
    assert clock.perf_counter() - began < 0.5


# -- deadline_ns ---------------------------------------------------------------------------


def test_the_deadline_waits_for_the_next_opening() -> None:
    # Fri 2026-03-06 17:30 CET + 240: 30 on Friday, 210 on Monday from 08:00 -> Mon 11:30 CET
    # = 10:30Z
    assert deadline_ns(utc("2026-03-06T16:30Z"), 240, OFFICE, BERLIN) == utc("2026-03-09T10:30Z")
    # Fri 14:00 CET + 240 is the closing instant itself, 18:00 CET = 17:00Z
    assert deadline_ns(utc("2026-03-06T13:00Z"), 240, OFFICE, BERLIN) == utc("2026-03-06T17:00Z")
    # a target of 0 is the start, staffed or not (Saturday)
    saturday = utc("2026-03-07T11:00Z")
    assert deadline_ns(saturday, 0, OFFICE, BERLIN) == saturday
    # 24x7: plain elapsed time
    assert deadline_ns(saturday, 90, ALWAYS, BERLIN) == saturday + 90 * MIN


def test_the_deadline_counts_elapsed_time_across_the_change() -> None:
    # "Sun 00:00-24:00" from Sun 2026-03-29 00:00 CET (03-28 23:00Z), 180 minutes: 02:00Z,
    # which the wall shows as 04:00 CEST
    sunday = SupportHours.parse("Sun 00:00-24:00")
    assert deadline_ns(utc("2026-03-28T23:00Z"), 180, sunday, BERLIN) == utc("2026-03-29T02:00Z")
    # 24 h of Sundays from that one: its 23 h, then 1 h of the next, Sun 04-05 01:00 CEST
    # (04-04 23:00Z)
    assert deadline_ns(utc("2026-03-28T23:00Z"), 1_440, sunday, BERLIN) == utc("2026-04-04T23:00Z")


def test_a_negative_target_is_refused() -> None:
    with pytest.raises(ValueError, match="0 minutes or more"):
        deadline_ns(0, -1, OFFICE, BERLIN)


INSTANTS = st.one_of(
    st.integers(utc("2026-01-01T00:00Z"), utc("2027-01-01T00:00Z")),
    # near the 2026 changes in Europe and America, to the nanosecond
    st.sampled_from(["2026-03-08T07:00Z", "2026-03-29T01:00Z", "2026-10-25T01:00Z"]).flatmap(
        lambda t: st.integers(utc(t) - 2 * 86_400 * S, utc(t) + 86_400 * S)
    ),
)


@settings(max_examples=150, deadline=None)
@given(INSTANTS, st.integers(0, 3_000), support_hours(), st.sampled_from(TENANT_ZONES))
def test_deadline_is_the_inverse_of_support_seconds(
    start: int, target: int, hours: SupportHours, tz: str
) -> None:
    due = deadline_ns(start, target, hours, tz)
    assert support_seconds(start, due, hours, tz) == target * 60
    if target:  # and it is the first such instant
        assert support_seconds(start, due - 1, hours, tz) < target * 60


@settings(max_examples=150, deadline=None)
@given(
    st.lists(INSTANTS.map(lambda ns: ns // S * S), min_size=3, max_size=3).map(sorted),
    support_hours(),
    st.sampled_from(TENANT_ZONES),
)
def test_support_time_adds_up_over_consecutive_spans(
    instants: list[int], hours: SupportHours, tz: str
) -> None:
    # whole-second instants, and openings are whole seconds: no rounding in the sum
    a, b, c = instants
    total = support_seconds(a, c, hours, tz)
    assert total == support_seconds(a, b, hours, tz) + support_seconds(b, c, hours, tz)
    assert total <= (c - a) // S


@settings(max_examples=60, deadline=None)
@given(
    st.integers(utc("2026-01-01T00:00Z") // MIN, utc("2027-01-01T00:00Z") // MIN),
    st.integers(0, 3 * 1_440),
    support_hours(),
    st.sampled_from(["UTC", "Asia/Kolkata"]),
)
def test_support_time_is_the_minutes_covers_says_are_staffed_where_clocks_never_change(
    first_minute: int, length: int, hours: SupportHours, tz: str
) -> None:
    # without DST a staffed minute is one whose local wall time ``covers`` says is staffed
    offset = zone(tz).utcoffset(datetime(2026, 1, 1))
    assert offset is not None
    epoch = datetime(1970, 1, 1) + offset
    staffed = 0
    for m in range(first_minute, first_minute + length):
        wall = epoch + timedelta(minutes=m)
        staffed += hours.covers(wall.weekday(), wall.hour * 60 + wall.minute)
    start = first_minute * MIN
    assert support_seconds(start, start + length * MIN, hours, tz) == staffed * 60


# -- target_status ------------------------------------------------------------------------

# Wed 2026-03-11 10:00 CET (09:00Z), 240 minutes of "Mon-Fri 08:00-18:00": due at 14:00 CET
DETECTED = utc("2026-03-11T09:00Z")
DUE = utc("2026-03-11T13:00Z")
LATER = utc("2026-03-20T12:00Z")
# Wed 14:00 CET (13:00Z) + 240 is due at the 18:00 closing; nothing runs until Thu 08:00
EVENING = utc("2026-03-11T13:00Z")
THURSDAY = utc("2026-03-12T07:00Z")


def status(answered: int, now: int = LATER, detected: int = DETECTED) -> str:
    return target_status(detected, answered, 240, OFFICE, BERLIN, now)


def test_an_answer_exactly_at_the_target_is_met_one_second_later_missed() -> None:
    assert deadline_ns(DETECTED, 240, OFFICE, BERLIN) == DUE
    assert status(DUE) == "met"  # 240 minutes
    assert status(DUE + S // 2) == "met"  # 240 min 0.5 s, shown as 240 minutes
    assert status(DUE + S) == "missed"  # 240 min 1 s
    # an answer overnight or on Thursday 08:00 sharp is still 240 minutes; 08:00:01 is not
    assert deadline_ns(EVENING, 240, OFFICE, BERLIN) == utc("2026-03-11T17:00Z")
    assert status(utc("2026-03-11T17:00:01Z"), detected=EVENING) == "met"
    assert status(THURSDAY, detected=EVENING) == "met"
    assert status(THURSDAY + S, detected=EVENING) == "missed"


def test_an_unanswered_incident_is_pending_while_inside_its_target() -> None:
    assert status(-1, now=DETECTED) == "pending"
    assert status(-1, now=DUE) == "pending"  # an answer now would still be met
    assert status(-1, now=DUE + S - 1) == "pending"  # still 240 minutes, rounded down
    assert status(-1, now=DUE + S) == "missed"
    assert status(-1, now=LATER) == "missed"
    assert status(-1, now=THURSDAY, detected=EVENING) == "pending"  # overnight, unstaffed
    assert status(-1, now=THURSDAY + S, detected=EVENING) == "missed"


def test_an_answer_after_now_has_not_happened_yet() -> None:
    # read on Wed 12:00 CET, an acknowledgement recorded for 13:00: pending, not met
    assert status(utc("2026-03-11T12:00Z"), now=utc("2026-03-11T11:00Z")) == "pending"


# -- month_compliance ----------------------------------------------------------------------


def incident(
    number: int,
    detected: int,
    ack: int = -1,
    resolved: int = -1,
    *,
    kind: str = "device",
    state: str = "open",
    gateway_incident: int = 0,
) -> Incident:
    """An incident of tenant 1 detected 10 minutes after it started."""
    return Incident(
        number, 1, kind, f"{kind}-{number}", detected - 10 * MIN, detected, state,
        gateway_incident=gateway_incident, acknowledged_ns=ack, resolved_ns=resolved,
    )  # fmt: skip


def compliance(incidents: list[Incident], now: int, year: int = 2026, month: int = 3) -> Compliance:
    basic = DEFAULT_TIERS["basic"]  # 240 / 1,440 minutes, Mon-Fri 08:00-18:00
    return month_compliance(
        incidents, year, month, BERLIN, basic.support_hours,
        basic.response_target_min, basic.resolve_target_min, now,
    )  # fmt: skip


def test_a_month_counts_met_missed_and_leaves_pending_out() -> None:
    now = utc("2026-03-11T15:00Z")  # Wed 16:00 CET
    month = compliance(
        [
            # Mon 03-09 09:00 CET, acknowledged 09:30: 30 minutes, met
            incident(1, utc("2026-03-09T08:00Z"), utc("2026-03-09T08:30Z")),
            # Mon 03-09 09:00, acknowledged Mon 13:00 + 1 s: 240 min 1 s, missed
            incident(2, utc("2026-03-09T08:00Z"), utc("2026-03-09T12:00:01Z")),
            # Tue 03-10 09:00, acknowledged at 13:00: exactly 240, met
            incident(3, utc("2026-03-10T08:00Z"), utc("2026-03-10T12:00Z")),
            # Wed 03-11 14:00, unanswered at 16:00: 120 of 240, pending
            incident(4, utc("2026-03-11T13:00Z")),
        ],
        now,
    )
    assert month.response == Tally(met=2, missed=1, pending=1)
    assert month.response.share == Fraction(2, 3)
    # resolve (1,440), none resolved: #1 and #2 have had Mon 09-18 = 540 + Tue 600 + Wed
    # 08-16 = 480 -> 1,620 > 1,440, missed; #3 540 + 480 = 1,020 and #4 120, pending
    assert month.resolve == Tally(met=0, missed=2, pending=2)
    assert month.resolve.share == 0
    assert (month.year, month.month, month.now_ns, month.excluded) == (2026, 3, now, 0)


def test_a_month_with_nothing_counted_has_no_share() -> None:
    month = compliance([incident(1, utc("2026-03-11T13:00Z"))], utc("2026-03-11T14:00Z"))
    assert month.response == Tally(pending=1)
    assert month.response.share is None
    assert compliance([], utc("2026-04-01T00:00Z")).resolve.share is None


def test_an_incident_belongs_to_the_local_month_of_its_detection() -> None:
    # 2026-03-31T23:30Z is Wed 2026-04-01 01:30 CEST in Berlin: April's, not March's;
    # 2026-02-28T23:30Z is Sun 2026-03-01 00:30 CET: March's
    late = incident(1, utc("2026-03-31T23:30Z"), utc("2026-04-01T06:10Z"))
    early = incident(2, utc("2026-02-28T23:30Z"), utc("2026-03-02T07:10Z"))
    now = utc("2026-04-10T00:00Z")
    assert compliance([late, early], now, 2026, 3).response == Tally(met=1)
    assert compliance([late, early], now, 2026, 4).response == Tally(met=1)
    assert compliance([late, early], now, 2026, 2).response == Tally()


def test_incidents_cleared_by_backfill_or_attached_to_a_gateway_are_not_counted() -> None:
    detected = utc("2026-03-09T08:00Z")
    cleared = incident(1, detected, state="cleared_by_backfill")
    attached = incident(2, detected, gateway_incident=3)
    gateway = incident(3, detected, utc("2026-03-09T08:05Z"), kind="gateway")
    month = compliance([cleared, attached, gateway], utc("2026-03-31T00:00Z"))
    assert month.response == Tally(met=1)
    assert month.excluded == 2


def test_a_resolve_without_acknowledgement_does_not_answer_the_response() -> None:
    # Mon 03-09 09:00 CET, closed by its device at 09:20, never acknowledged
    closed = incident(1, utc("2026-03-09T08:00Z"), resolved=utc("2026-03-09T08:20Z"))
    month = compliance([closed], utc("2026-03-31T00:00Z"))
    assert month.response == Tally(missed=1)
    assert month.resolve == Tally(met=1)


def test_incidents_detected_after_now_are_not_yet_in_the_figures() -> None:
    month = compliance([incident(1, utc("2026-03-20T08:00Z"))], utc("2026-03-10T00:00Z"))
    assert (month.response, month.resolve, month.excluded) == (Tally(), Tally(), 0)


# -- docs/sla.md, "Support time and compliance" ----------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sla.md"
SECTION = DOCS.read_text().split("## Support time and compliance")[1].split("\n## ")[0]


def doc_rows() -> list[list[str]]:
    lines = [line for line in SECTION.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def berlin(cell: str) -> int:
    """A table cell ``2026-03-06 17:30`` (Berlin local) as Unix ns; -1 for ``–``."""
    if cell == "–":
        return -1
    wall = datetime.fromisoformat(cell)
    return local_to_ns(wall.date(), wall.time(), BERLIN)


def test_the_worked_example_is_what_month_compliance_answers() -> None:
    basic = DEFAULT_TIERS["basic"]
    assert basic.support_hours == OFFICE
    now = local_to_ns(date(2026, 3, 31), time(16, 0), BERLIN)
    assert now == utc("2026-03-31T14:00Z")  # CEST (+2)
    rows = doc_rows()
    assert [row[0] for row in rows] == [str(n) for n in range(1, 9)]
    incidents = []
    for number, kind, detected, ack, resolved, response, resolve in rows:
        record = incident(int(number), berlin(detected), berlin(ack), berlin(resolved))
        record.kind = kind.split(",")[0]
        record.state = "cleared_by_backfill" if "cleared_by_backfill" in kind else "open"
        if match := re.search(r"attached to #(\d+)", kind):
            record.gateway_incident = int(match[1])
        incidents.append(record)
        for cell, answered, target in (
            (response, record.acknowledged_ns, basic.response_target_min),
            (resolve, record.resolved_ns, basic.resolve_target_min),
        ):
            if cell == "excluded":
                assert record.state == "cleared_by_backfill" or record.gateway_incident
                continue
            shown, judged = int(cell.split()[0]), cell.split()[-1]
            until = now if "so far" in cell else answered
            assert ("so far" in cell) == (answered < 0), (number, cell)
            assert support_minutes(record.detected_ns, until, OFFICE, BERLIN) == shown, number
            assert target_status(record.detected_ns, answered, target, OFFICE, BERLIN, now) == (
                judged
            ), (number, cell)
    # incident 8 is 2026-02-28T23:30Z, a March incident in Berlin
    assert incidents[7].detected_ns == utc("2026-02-28T23:30Z")
    # incident 4 is pending until 17:00 today (response) and Thu 2026-04-02 17:00 (resolve)
    assert deadline_ns(incidents[3].detected_ns, 240, OFFICE, BERLIN) == utc("2026-03-31T15:00Z")
    assert deadline_ns(incidents[3].detected_ns, 1_440, OFFICE, BERLIN) == utc("2026-04-02T15:00Z")

    month = compliance(incidents, now)
    totals = re.search(
        r"Response: (\d) met, (\d) missed, (\d) pending: (\d)/(\d) = (\d+) %\. "
        r"Resolve: (\d) met, (\d) missed, (\d) pending: (\d)/(\d) =\s+(\d+) %",
        SECTION,
    )
    assert totals is not None
    n = [int(g) for g in totals.groups()]
    assert month.response == Tally(*n[0:3])
    assert month.response.share == Fraction(n[3], n[4]) == Fraction(n[5], 100)
    assert month.resolve == Tally(*n[6:9])
    assert month.resolve.share == Fraction(n[9], n[10]) == Fraction(n[11], 100)
    assert month.excluded == 2
