"""Maintenance windows (core.sla.windows): occurrences, specs, records, JSON and one line.

Every expected occurrence is written out in UTC by hand. The 2026 calendar used: 2026-01-01
is a Thursday and 2026-03-01 a Sunday. Europe/Berlin springs forward on Sun 2026-03-29 at
01:00Z (02:00 CET to 03:00 CEST) and falls back on Sun 2026-10-25 at 01:00Z (03:00 CEST to
02:00 CET); America/New_York on Sun 2026-03-08 at 07:00Z (02:00 EST to 03:00 EDT) and Sun
2026-11-01 at 06:00Z (02:00 EDT to 01:00 EST).
"""

from __future__ import annotations

import calendar
import dataclasses
from datetime import date, datetime
from typing import Any

import msgpack
import pytest

from core.sla.windows import Window
from core.times import NS_PER_S

DAY_NS = 86_400 * NS_PER_S


def utc(text: str) -> int:
    """``2026-03-29T01:00Z`` as Unix ns (calendar.timegm: no zone database involved)."""
    return calendar.timegm(datetime.fromisoformat(text).timetuple()) * NS_PER_S


def spans(*pairs: tuple[str, str]) -> list[tuple[int, int]]:
    return [(utc(start), utc(end)) for start, end in pairs]


def recurring(weekdays: Any, at: str, minutes: int, zone: str, **more: Any) -> Window:
    spec = {"scope": "tenant", "weekdays": weekdays, "at": at, "duration_min": minutes}
    return Window.from_spec(spec | {"zone": zone} | more)


# -- recurring occurrences across DST --------------------------------------------------------


def test_berlin_daily_window_across_the_spring_gap() -> None:
    window = recurring("Mon-Sun", "02:30", 60, "Europe/Berlin")
    # 03-28: 02:30 CET (+1) = 01:30Z. 03-29: 02:30 does not exist, so the first instant
    # after the gap, 03:00 CEST = 01:00Z, and 60 elapsed minutes to 02:00Z. 03-30: 02:30
    # CEST (+2) = 00:30Z. The 03-31 occurrence (00:30Z) starts after the range.
    assert window.occurrences(utc("2026-03-28T00:00Z"), utc("2026-03-31T00:00Z")) == spans(
        ("2026-03-28T01:30Z", "2026-03-28T02:30Z"),
        ("2026-03-29T01:00Z", "2026-03-29T02:00Z"),
        ("2026-03-30T00:30Z", "2026-03-30T01:30Z"),
    )


def test_berlin_daily_window_across_the_autumn_fold() -> None:
    window = recurring("Mon-Sun", "02:30", 60, "Europe/Berlin")
    # 10-24: 02:30 CEST (+2) = 00:30Z. 10-25: 02:30 happens twice; the first, in CEST, is
    # 00:30Z (it ends at 02:30 CET, 60 minutes later). 10-26: 02:30 CET (+1) = 01:30Z.
    assert window.occurrences(utc("2026-10-24T00:00Z"), utc("2026-10-27T00:00Z")) == spans(
        ("2026-10-24T00:30Z", "2026-10-24T01:30Z"),
        ("2026-10-25T00:30Z", "2026-10-25T01:30Z"),
        ("2026-10-26T01:30Z", "2026-10-26T02:30Z"),
    )


def test_new_york_daily_window_across_both_changes() -> None:
    window = recurring("Mon-Sun", "02:30", 60, "America/New_York")
    # 03-07: 02:30 EST (-5) = 07:30Z. 03-08: in the gap, so 03:00 EDT = 07:00Z. 03-09:
    # 02:30 EDT (-4) = 06:30Z.
    assert window.occurrences(utc("2026-03-07T00:00Z"), utc("2026-03-10T00:00Z")) == spans(
        ("2026-03-07T07:30Z", "2026-03-07T08:30Z"),
        ("2026-03-08T07:00Z", "2026-03-08T08:00Z"),
        ("2026-03-09T06:30Z", "2026-03-09T07:30Z"),
    )
    # 10-31: 02:30 EDT = 06:30Z. 11-01: the fold is 01:00-02:00, so 02:30 is only EST (-5) =
    # 07:30Z. 11-02: 02:30 EST = 07:30Z.
    assert window.occurrences(utc("2026-10-31T00:00Z"), utc("2026-11-03T00:00Z")) == spans(
        ("2026-10-31T06:30Z", "2026-10-31T07:30Z"),
        ("2026-11-01T07:30Z", "2026-11-01T08:30Z"),
        ("2026-11-02T07:30Z", "2026-11-02T08:30Z"),
    )


def test_new_york_start_in_the_fold_takes_its_first_occurrence() -> None:
    window = recurring("Mon-Sun", "01:30", 60, "America/New_York")
    # 10-31: 01:30 EDT (-4) = 05:30Z. 11-01: 01:30 happens twice; the first is EDT, 05:30Z.
    # 11-02: 01:30 EST (-5) = 06:30Z.
    assert window.occurrences(utc("2026-10-31T00:00Z"), utc("2026-11-03T00:00Z")) == spans(
        ("2026-10-31T05:30Z", "2026-10-31T06:30Z"),
        ("2026-11-01T05:30Z", "2026-11-01T06:30Z"),
        ("2026-11-02T06:30Z", "2026-11-02T07:30Z"),
    )


def test_duration_is_elapsed_time_not_wall_clock() -> None:
    window = recurring("Sun", "02:00", 180, "Europe/Berlin")
    # Sun 10-18: 02:00 CEST = 00:00Z + 3 h. Sun 10-25: 02:00 first in CEST = 00:00Z, + 3 h =
    # 03:00Z, which is 04:00 CET (the wall shows 2 h pass). Sun 11-01: 02:00 CET = 01:00Z.
    assert window.occurrences(utc("2026-10-17T00:00Z"), utc("2026-11-02T00:00Z")) == spans(
        ("2026-10-18T00:00Z", "2026-10-18T03:00Z"),
        ("2026-10-25T00:00Z", "2026-10-25T03:00Z"),
        ("2026-11-01T01:00Z", "2026-11-01T04:00Z"),
    )
    # Sun 03-22: 02:00 CET = 01:00Z. Sun 03-29: 02:00 is in the gap, so 03:00 CEST = 01:00Z,
    # + 3 h = 04:00Z (06:00 CEST). Sun 04-05: 02:00 CEST = 00:00Z.
    assert window.occurrences(utc("2026-03-21T00:00Z"), utc("2026-04-06T00:00Z")) == spans(
        ("2026-03-22T01:00Z", "2026-03-22T04:00Z"),
        ("2026-03-29T01:00Z", "2026-03-29T04:00Z"),
        ("2026-04-05T00:00Z", "2026-04-05T03:00Z"),
    )


# -- first, last, weekdays -------------------------------------------------------------------


def test_first_and_last_are_inclusive_and_the_last_occurrence_runs_in_full() -> None:
    # Mon-Fri from Wed 01-07 to Tue 01-13: Wed 7, Thu 8, Fri 9, Mon 12, Tue 13 (not Tue 6,
    # not Wed 14). 23:00 CET (+1) = 22:00Z, 2 h to 00:00Z = 01:00 CET of the next day.
    window = recurring("Mon-Fri", "23:00", 120, "Europe/Berlin", first="2026-01-07")
    window = dataclasses.replace(window, last=date(2026, 1, 13))
    assert window.occurrences(utc("2026-01-01T00:00Z"), utc("2026-02-01T00:00Z")) == spans(
        ("2026-01-07T22:00Z", "2026-01-08T00:00Z"),
        ("2026-01-08T22:00Z", "2026-01-09T00:00Z"),
        ("2026-01-09T22:00Z", "2026-01-10T00:00Z"),
        ("2026-01-12T22:00Z", "2026-01-13T00:00Z"),
        ("2026-01-13T22:00Z", "2026-01-14T00:00Z"),
    )
    # the occurrence of 01-13, the last date, still covers the minute before 01-14 00:00Z,
    # and comes back whole, not clipped to the range
    assert window.occurrences(utc("2026-01-13T23:59Z"), utc("2026-01-14T00:00Z")) == spans(
        ("2026-01-13T22:00Z", "2026-01-14T00:00Z"),
    )
    # Wed 01-14 would be a weekday, but it is after last
    assert window.occurrences(utc("2026-01-14T00:00Z"), utc("2026-01-16T00:00Z")) == []


def test_weekdays_filter_the_dates() -> None:
    # Sat,Sun at 10:00 UTC over 03-01 (Sun) .. 03-08 (Sun): Sun 1, Sat 7, Sun 8
    weekend = recurring("Sat,Sun", "10:00", 60, "UTC")
    assert weekend.occurrences(utc("2026-03-01T00:00Z"), utc("2026-03-09T00:00Z")) == spans(
        ("2026-03-01T10:00Z", "2026-03-01T11:00Z"),
        ("2026-03-07T10:00Z", "2026-03-07T11:00Z"),
        ("2026-03-08T10:00Z", "2026-03-08T11:00Z"),
    )
    # Fri-Mon wraps over the weekend: from Tue 03-03 to Wed 03-11, Fri 6 .. Mon 9
    long_weekend = recurring("Fri-Mon", "10:00", 60, "UTC")
    assert long_weekend.weekdays == (0, 4, 5, 6)
    assert long_weekend.occurrences(utc("2026-03-03T00:00Z"), utc("2026-03-11T00:00Z")) == spans(
        ("2026-03-06T10:00Z", "2026-03-06T11:00Z"),
        ("2026-03-07T10:00Z", "2026-03-07T11:00Z"),
        ("2026-03-08T10:00Z", "2026-03-08T11:00Z"),
        ("2026-03-09T10:00Z", "2026-03-09T11:00Z"),
    )


@pytest.mark.parametrize(
    ("weekdays", "expected"),
    [
        ("Mon-Fri", (0, 1, 2, 3, 4)),
        ("Sat,Sun", (5, 6)),
        (["Mon", "Wed"], (0, 2)),
        ("mon, WED", (0, 2)),
        ("Sun-Sat", (0, 1, 2, 3, 4, 5, 6)),
        ("Mon-Wed,Tue", (0, 1, 2)),
        ("Fri", (4,)),
    ],
)
def test_weekdays_read_names_lists_and_wrapping_ranges(weekdays: Any, expected: tuple) -> None:
    assert recurring(weekdays, "02:00", 60, "UTC").weekdays == expected


# -- half-open overlap and looking back ------------------------------------------------------


def test_one_off_window_overlaps_half_open() -> None:
    window = Window.from_spec(
        {"scope": "tenant", "start": "2026-03-01T11:00:00+01:00", "end": "2026-03-01T12:00Z"}
    )
    # 11:00 +01:00 = 10:00Z: the window is [10:00Z, 12:00Z)
    assert (window.start_ns, window.end_ns) == (utc("2026-03-01T10:00Z"), utc("2026-03-01T12:00Z"))
    whole = [(window.start_ns, window.end_ns)]
    assert window.occurrences(utc("2026-03-01T12:00Z"), utc("2026-03-01T13:00Z")) == []
    assert window.occurrences(utc("2026-03-01T09:00Z"), utc("2026-03-01T10:00Z")) == []
    assert window.occurrences(utc("2026-03-01T12:00Z") - 1, utc("2026-03-01T13:00Z")) == whole
    assert window.occurrences(utc("2026-03-01T09:00Z"), utc("2026-03-01T10:00Z") + 1) == whole
    assert window.occurrences(utc("2026-03-01T10:30Z"), utc("2026-03-01T10:31Z")) == whole
    # an empty range overlaps nothing, even inside the window
    assert window.occurrences(utc("2026-03-01T11:00Z"), utc("2026-03-01T11:00Z")) == []


def test_recurring_occurrence_overlaps_half_open() -> None:
    window = recurring("Mon-Sun", "10:00", 60, "UTC")
    # 03-01's occurrence is [10:00Z, 11:00Z)
    one = spans(("2026-03-01T10:00Z", "2026-03-01T11:00Z"))
    assert window.occurrences(utc("2026-03-01T11:00Z"), utc("2026-03-01T12:00Z")) == []
    assert window.occurrences(utc("2026-03-01T09:00Z"), utc("2026-03-01T10:00Z")) == []
    assert window.occurrences(utc("2026-03-01T11:00Z") - 1, utc("2026-03-01T12:00Z")) == one
    assert window.occurrences(utc("2026-03-01T09:00Z"), utc("2026-03-01T10:00Z") + 1) == one


def test_occurrences_look_back_across_a_long_duration() -> None:
    # Sun 22:00 UTC for 7 days: Sun 03-01 22:00Z runs to Sun 03-08 22:00Z, so a Saturday
    # hour six days after its start is covered by it, and only by it
    week = recurring("Sun", "22:00", 10080, "UTC")
    assert week.occurrences(utc("2026-03-07T12:00Z"), utc("2026-03-07T13:00Z")) == spans(
        ("2026-03-01T22:00Z", "2026-03-08T22:00Z"),
    )
    # around 03-08 22:00Z one occurrence ends and the next begins: both overlap the range
    assert week.occurrences(utc("2026-03-08T21:00Z"), utc("2026-03-08T23:00Z")) == spans(
        ("2026-03-01T22:00Z", "2026-03-08T22:00Z"),
        ("2026-03-08T22:00Z", "2026-03-15T22:00Z"),
    )


def test_occurrences_look_back_across_a_month_edge_in_the_windows_zone() -> None:
    # Berlin Tue 23:00 for 26 h: Tue 2026-03-31 23:00 CEST (+2) = 21:00Z, to 04-01 23:00Z;
    # asked for April in UTC it started a day before the range
    window = recurring("Tue", "23:00", 26 * 60, "Europe/Berlin")
    assert window.occurrences(utc("2026-04-01T22:00Z"), utc("2026-04-02T00:00Z")) == spans(
        ("2026-03-31T21:00Z", "2026-04-01T23:00Z"),
    )


# -- from_spec -------------------------------------------------------------------------------

ONCE = {"scope": "tenant", "start": "2026-03-01T02:00:00+01:00", "end": "2026-03-01T04:00Z"}
DAILY = {"scope": "tenant", "weekdays": "Mon-Sun", "at": "02:00", "duration_min": 60}
DAILY_BERLIN = DAILY | {"zone": "Europe/Berlin"}


def without(spec: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != key}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ONCE | {"colour": "red"}, "window: unknown key 'colour'"),
        (without(ONCE, "scope"), "window: missing key 'scope'"),
        (ONCE | {"scope": "galaxy"}, "window: scope must be one of tenant, site, device"),
        (ONCE | {"scope": 1}, "window: scope must be a string, not 1"),
        (ONCE | {"scope": "site"}, "window: missing key 'site'"),
        (ONCE | {"site": "Hall A"}, "window: site is only for scope 'site', not 'tenant'"),
        (ONCE | {"scope": "device", "site": "A"}, "window: site is only for scope 'site'"),
        (ONCE | {"scope": "site", "site": ""}, "window: site must not be empty"),
        (ONCE | {"scope": "device", "device": 7}, "window: device must be a string, not 7"),
        (ONCE | {"reason": 5}, "window: reason must be a string, not 5"),
        (without(ONCE, "end"), "window: missing key 'end'"),
        (ONCE | {"start": "2026-03-01T02:00:00"}, "window: start must carry an explicit offset"),
        (ONCE | {"end": "tomorrow"}, "window: end must be an instant with an explicit offset"),
        (ONCE | {"end": 1772334000}, "window: end must be a string"),
        (ONCE | {"end": "2026-03-01T01:00Z"}, "window: end must be after start"),
        (ONCE | {"end": "2026-03-01T00:59Z"}, "window: end must be after start"),
        # 2026-03-01T01:00Z + 366 days (2026-03 to 2027-03, no Feb 29) = 2027-03-02T01:00Z
        (ONCE | {"end": "2027-03-02T01:00:01Z"}, "window: end must be at most 366 days after"),
        (ONCE | {"weekdays": "Mon"}, "window: start and weekdays do not go together"),
        (DAILY_BERLIN | {"end": "2026-03-01T04:00Z"}, "window: end and weekdays do not go"),
        ({"scope": "tenant"}, r"window: missing key 'start' \(one-off\) or 'weekdays'"),
        (without(DAILY_BERLIN, "weekdays"), "window: missing key 'weekdays'"),
        (without(DAILY_BERLIN, "at"), "window: missing key 'at'"),
        (without(DAILY_BERLIN, "duration_min"), "window: missing key 'duration_min'"),
        (DAILY, "window: missing key 'zone'"),
        (DAILY_BERLIN | {"weekdays": "Funday"}, "window: weekdays must name days Mon to Sun"),
        (DAILY_BERLIN | {"weekdays": "Mon-Tue-Wed"}, "window: weekdays must name days"),
        (DAILY_BERLIN | {"weekdays": "Mon,,Tue"}, "window: weekdays must name days"),
        (DAILY_BERLIN | {"weekdays": ["Mon", 1]}, "window: weekdays must name days .* not 1"),
        (DAILY_BERLIN | {"weekdays": []}, "window: weekdays must name at least one day"),
        (DAILY_BERLIN | {"weekdays": 5}, "window: weekdays must be a string or a list"),
        (DAILY_BERLIN | {"at": "24:00"}, r"window: at must be HH:MM \(00:00 to 23:59\)"),
        (DAILY_BERLIN | {"at": "2:00"}, "window: at must be HH:MM"),
        (DAILY_BERLIN | {"at": 200}, "window: at must be a string, not 200"),
        (DAILY_BERLIN | {"duration_min": 0}, "window: duration_min must be an integer from 1"),
        (DAILY_BERLIN | {"duration_min": 10081}, "window: duration_min must be an integer"),
        (DAILY_BERLIN | {"duration_min": True}, "window: duration_min must be an integer"),
        (DAILY_BERLIN | {"duration_min": 90.0}, "window: duration_min must be an integer"),
        (DAILY_BERLIN | {"duration_min": "90"}, "window: duration_min must be an integer"),
        (DAILY | {"zone": "Mars/Base"}, "window: zone 'Mars/Base' is not a known time zone"),
        (DAILY | {"zone": "../etc/passwd"}, "window: zone '../etc/passwd' is not a known"),
        (DAILY | {"zone": 1}, "window: zone must be a string, not 1"),
        (DAILY_BERLIN | {"first": "2026-13-01"}, "window: first must be a date YYYY-MM-DD"),
        (DAILY_BERLIN | {"first": "20260101"}, "window: first must be a date YYYY-MM-DD"),
        (DAILY_BERLIN | {"last": 20261231}, "window: last must be a date YYYY-MM-DD"),
        (
            DAILY_BERLIN | {"first": "2026-02-01", "last": "2026-01-31"},
            "window: last must be on or after first",
        ),
    ],
)
def test_from_spec_refuses_a_bad_spec_naming_the_key(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        Window.from_spec(spec)


def test_from_spec_refuses_what_is_no_object() -> None:
    with pytest.raises(ValueError, match="^window must be an object"):
        Window.from_spec(["scope", "tenant"])  # type: ignore[arg-type]


def test_from_spec_accepts_the_edges_of_each_limit() -> None:
    # exactly 366 days: 2026-03-01T01:00Z to 2027-03-02T01:00Z
    year = Window.from_spec(ONCE | {"end": "2027-03-02T01:00:00Z"})
    assert year.end_ns - year.start_ns == 366 * DAY_NS
    assert Window.from_spec(DAILY_BERLIN | {"duration_min": 10080}).duration_s == 604_800
    assert Window.from_spec(DAILY_BERLIN | {"duration_min": 1}).duration_s == 60
    same_day = Window.from_spec(DAILY_BERLIN | {"first": "2026-03-01", "last": "2026-03-01"})
    assert (same_day.first, same_day.last) == (date(2026, 3, 1), date(2026, 3, 1))
    # null is the same as leaving first or last out (the API shows them as null)
    assert Window.from_spec(DAILY_BERLIN | {"first": None}).first is None


def test_from_spec_builds_the_window_it_was_given() -> None:
    spec = {"scope": "device", "device": "dev-1", "reason": "firmware"}
    window = Window.from_spec(
        spec
        | {"weekdays": "Sat,Sun", "at": "02:00", "duration_min": 120, "zone": "UTC"}
        | {"first": "2026-01-01"},
        window_id=7,
    )
    assert window == Window(
        id=7,
        scope="device",
        target="dev-1",
        weekdays=(5, 6),
        local_start="02:00",
        duration_s=7_200,
        zone="UTC",
        first=date(2026, 1, 1),
        reason="firmware",
    )
    assert window.recurring
    assert not Window.from_spec(ONCE).recurring


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scope": "site", "start_ns": 1, "end_ns": 2}, "names a target"),
        ({"scope": "tenant", "target": "Hall A", "start_ns": 1, "end_ns": 2}, "names a target"),
        ({"scope": "planet", "start_ns": 1, "end_ns": 2}, "scope must be one of"),
        ({"scope": "tenant", "start_ns": 2, "end_ns": 2}, "end_ns must be after start_ns"),
        ({"scope": "tenant", "start_ns": 1, "end_ns": 2, "zone": "UTC"}, "no recurring fields"),
    ],
)
def test_a_one_off_window_holds_its_own_invariants(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Window(id=1, **fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"weekdays": (2, 0)}, "weekdays must be distinct days 0 \\(Mon\\) to 6"),
        ({"weekdays": (0, 7)}, "weekdays must be distinct days"),
        ({"weekdays": (0, 0)}, "weekdays must be distinct days"),
        ({"duration_s": 90}, "duration_s must be whole minutes up to 7 days"),
        ({"duration_s": 604_860}, "duration_s must be whole minutes up to 7 days"),
        ({"local_start": "25:00"}, "local_start must be HH:MM"),
        ({"zone": "right/UTC"}, "unknown time zone"),
        ({"start_ns": 1}, "a recurring window has no start_ns"),
        ({"first": date(2026, 2, 1), "last": date(2026, 1, 1)}, "last must be on or after"),
    ],
)
def test_a_recurring_window_holds_its_own_invariants(fields: dict[str, Any], message: str) -> None:
    daily = {"scope": "tenant", "weekdays": (0, 1), "local_start": "02:00", "duration_s": 3_600}
    Window(id=1, **daily, zone="UTC")  # valid as it stands
    with pytest.raises(ValueError, match=message):
        Window(id=1, **(daily | {"zone": "UTC"} | fields))


# -- records and JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        ONCE | {"scope": "site", "site": "Hall A", "reason": "crane"},
        DAILY_BERLIN | {"scope": "device", "device": "dev-1"},
        DAILY_BERLIN | {"first": "2026-01-01", "last": "2026-12-31", "weekdays": "Fri-Mon"},
    ],
)
def test_record_round_trips_exactly_through_msgpack(spec: dict[str, Any]) -> None:
    window = dataclasses.replace(
        Window.from_spec(spec, window_id=3), created_by="ops@example.com", created_ns=5
    )
    record = msgpack.unpackb(msgpack.packb(window.to_record()))
    assert Window.from_record(3, record) == window


def test_record_refuses_an_unknown_field() -> None:
    record = Window.from_spec(ONCE).to_record() | {"colour": "red"}
    with pytest.raises(ValueError, match="unknown fields"):
        Window.from_record(1, record)


def test_to_json_shows_a_one_off_window_in_utc() -> None:
    window = dataclasses.replace(
        Window.from_spec(ONCE | {"scope": "site", "site": "Hall A"}, window_id=4),
        created_by="ops",
        created_ns=utc("2026-02-20T09:00Z"),
    )
    assert window.to_json() == {
        "id": 4,
        "scope": "site",
        "site": "Hall A",
        "kind": "once",
        "start": "2026-03-01T01:00:00Z",  # 02:00 +01:00
        "end": "2026-03-01T04:00:00Z",
        "reason": "",
        "created_by": "ops",
        "created": "2026-02-20T09:00:00Z",
    }


def test_to_json_shows_a_recurring_window_by_its_rule() -> None:
    window = Window.from_spec(
        DAILY_BERLIN | {"weekdays": "Mon,Wed", "first": "2026-01-01", "reason": "backup"},
        window_id=5,
    )
    assert window.to_json() == {
        "id": 5,
        "scope": "tenant",
        "kind": "recurring",
        "weekdays": ["Mon", "Wed"],
        "at": "02:00",
        "duration_min": 60,
        "zone": "Europe/Berlin",
        "first": "2026-01-01",
        "last": None,
        "reason": "backup",
        "created_by": "",
        "created": None,
    }


# -- describe --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (
            DAILY_BERLIN | {"weekdays": "Mon-Fri", "duration_min": 120, "first": "2026-01-01"},
            "Mon-Fri 02:00 for 2 h (Europe/Berlin), from 2026-01-01",
        ),
        (
            DAILY | {"weekdays": "Sat,Sun", "duration_min": 90, "zone": "UTC"},
            "Sat,Sun 02:00 for 90 min (UTC)",
        ),
        (
            DAILY_BERLIN | {"weekdays": "Fri-Mon,Wed", "last": "2026-06-30"},
            "Wed,Fri-Mon 02:00 for 1 h (Europe/Berlin), until 2026-06-30",
        ),
        (
            DAILY_BERLIN | {"first": "2026-01-01", "last": "2026-12-31"},
            "Mon-Sun 02:00 for 1 h (Europe/Berlin), 2026-01-01 to 2026-12-31",
        ),
        (ONCE, "2026-03-01 01:00Z → 04:00Z"),
        # 00:30 +01:00 on 03-02 is 23:30Z on 03-01, the start's UTC date
        (ONCE | {"end": "2026-03-02T00:30:00+01:00"}, "2026-03-01 01:00Z → 23:30Z"),
        (ONCE | {"end": "2026-03-02T01:30:00Z"}, "2026-03-01 01:00Z → 2026-03-02 01:30Z"),
        (ONCE | {"end": "2026-03-01T01:00:30Z"}, "2026-03-01 01:00:00Z → 01:00:30Z"),
    ],
)
def test_describe_says_a_window_in_one_line(spec: dict[str, Any], line: str) -> None:
    assert Window.from_spec(spec).describe() == line


def test_describe_of_the_weekdays_reads_back_as_the_same_weekdays() -> None:
    for weekdays in ("Mon-Fri", "Sat,Sun", "Fri-Mon", "Mon,Wed,Fri", "Mon-Sun", "Sun"):
        window = recurring(weekdays, "02:00", 60, "UTC")
        shown = window.describe().split(" ")[0]
        assert shown == weekdays
        assert recurring(shown, "02:00", 60, "UTC").weekdays == window.weekdays
