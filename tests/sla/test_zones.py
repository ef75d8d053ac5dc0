"""A tenant's calendar (core.zones): local months and days, gaps and folds, ISO in and out.

Every expected instant is written out in UTC by hand, with the offsets that derive it. The
2026 transitions used: Europe/Berlin springs forward on Sun 2026-03-29 at 01:00Z (02:00 CET
to 03:00 CEST) and falls back on Sun 2026-10-25 at 01:00Z (03:00 CEST to 02:00 CET);
America/New_York on Sun 2026-03-08 at 07:00Z (02:00 EST to 03:00 EDT) and Sun 2026-11-01 at
06:00Z (02:00 EDT to 01:00 EST); America/Los_Angeles on 2026-03-08 at 10:00Z (02:00 PST to
03:00 PDT); Pacific/Auckland leaves NZDT (+13) on Sun 2026-04-05 and enters it on Sun
2026-09-27.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from core.times import LAST_S, NS_PER_S
from core.zones import (
    day_bounds,
    iso_local,
    local_buckets,
    local_date,
    local_days,
    local_minute_to_ns,
    local_to_ns,
    month_bounds,
    month_of,
    parse_clock,
    parse_instant,
    parse_month,
    zone,
)

HOUR_NS = 3_600 * NS_PER_S


def utc(text: str) -> int:
    """``2026-03-31T11:00Z`` as Unix ns (calendar.timegm: no zone database involved)."""
    return calendar.timegm(datetime.fromisoformat(text).timetuple()) * NS_PER_S


# -- zone --------------------------------------------------------------------------------


def test_zone_loads_an_iana_name() -> None:
    assert zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    "name",
    ["Mars/Base", "", "../x", "/etc/passwd", "Europe", "zone.tab", " UTC", "Europe/Berlin\0"]
    + ["right/Europe/Berlin", "localtime", "Factory"],
)
def test_zone_refuses_what_is_no_iana_zone(name: str) -> None:
    with pytest.raises(ValueError, match=r"^unknown time zone "):
        zone(name)
    with pytest.raises(ValueError, match=r"^unknown time zone "):
        month_bounds(2026, 3, name)


# -- local_to_ns ---------------------------------------------------------------------------


def test_local_time_on_ordinary_days_uses_that_days_offset() -> None:
    # Berlin 2026-03-28 02:30 CET (+1) = 01:30Z; 2026-03-30 02:30 CEST (+2) = 00:30Z
    assert local_to_ns(date(2026, 3, 28), time(2, 30), "Europe/Berlin") == utc("2026-03-28T01:30Z")
    assert local_to_ns(date(2026, 3, 30), time(2, 30), "Europe/Berlin") == utc("2026-03-30T00:30Z")


@pytest.mark.parametrize(
    ("day", "at", "tz", "expected"),
    [
        # 02:00-03:00 CET never happens on 2026-03-29: the gap ends at 03:00 CEST = 01:00Z
        (date(2026, 3, 29), time(2, 30), "Europe/Berlin", "2026-03-29T01:00Z"),
        (date(2026, 3, 29), time(2, 0), "Europe/Berlin", "2026-03-29T01:00Z"),
        (date(2026, 3, 29), time(2, 59, 59, 999_999), "Europe/Berlin", "2026-03-29T01:00Z"),
        # New York's gap 02:00-03:00 EST ends at 03:00 EDT (-4) = 07:00Z
        (date(2026, 3, 8), time(2, 30), "America/New_York", "2026-03-08T07:00Z"),
    ],
)
def test_local_time_in_the_spring_gap_means_the_first_instant_after_it(
    day: date, at: time, tz: str, expected: str
) -> None:
    assert local_to_ns(day, at, tz) == utc(expected)


def test_local_time_just_outside_the_gap_is_itself() -> None:
    # 01:59 CET (+1) = 00:59Z and 03:00 CEST (+2) = 01:00Z, both real wall times
    assert local_to_ns(date(2026, 3, 29), time(1, 59), "Europe/Berlin") == utc("2026-03-29T00:59Z")
    assert local_to_ns(date(2026, 3, 29), time(3, 0), "Europe/Berlin") == utc("2026-03-29T01:00Z")


@pytest.mark.parametrize(
    ("day", "at", "tz", "expected"),
    [
        # 02:30 happens twice in Berlin on 2026-10-25: first in CEST (+2) = 00:30Z
        (date(2026, 10, 25), time(2, 30), "Europe/Berlin", "2026-10-25T00:30Z"),
        # 01:30 happens twice in New York on 2026-11-01: first in EDT (-4) = 05:30Z
        (date(2026, 11, 1), time(1, 30), "America/New_York", "2026-11-01T05:30Z"),
        # 02:30 on 2026-11-01 in New York is after the fold, only in EST (-5) = 07:30Z
        (date(2026, 11, 1), time(2, 30), "America/New_York", "2026-11-01T07:30Z"),
    ],
)
def test_ambiguous_local_time_means_its_first_occurrence(
    day: date, at: time, tz: str, expected: str
) -> None:
    assert local_to_ns(day, at, tz) == utc(expected)
    assert local_to_ns(day, at.replace(fold=1), tz) == utc(expected)


def test_local_to_ns_refuses_an_aware_time() -> None:
    with pytest.raises(ValueError, match="local wall time"):
        local_to_ns(date(2026, 3, 1), time(2, 0, tzinfo=ZoneInfo("UTC")), "UTC")


def test_minute_1440_is_the_next_days_midnight() -> None:
    # 24:00 of Berlin 2026-03-28 = 00:00 CET (+1) 2026-03-29 = 2026-03-28T23:00Z
    assert local_minute_to_ns(date(2026, 3, 28), 1440, "Europe/Berlin") == utc("2026-03-28T23:00Z")
    # minute 150 = 02:30, in the gap on 2026-03-29: 01:00Z
    assert local_minute_to_ns(date(2026, 3, 29), 150, "Europe/Berlin") == utc("2026-03-29T01:00Z")
    with pytest.raises(ValueError, match="0 to 1440"):
        local_minute_to_ns(date(2026, 3, 29), 1441, "Europe/Berlin")


def test_parse_clock_reads_minutes_of_the_day_and_24_00_only_as_an_end() -> None:
    assert parse_clock("00:00") == 0
    assert parse_clock("02:30") == 150
    assert parse_clock("23:59") == 1439
    assert parse_clock("24:00", allow_24=True) == 1440
    for text in ("24:00", "2:30", "02:60", "02:30:00", "", "ab:cd", "٠٢:٣٠"):
        with pytest.raises(ValueError, match=r"must be HH:MM \(00:00 to 23:59\)"):
            parse_clock(text)
    with pytest.raises(ValueError, match=r"must be HH:MM \(00:00 to 24:00\)"):
        parse_clock("24:01", allow_24=True)


# -- months -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "tz", "start", "end"),
    [
        # 2026-04-01 00:00 NZDT (+13) = 03-31 11:00Z; 2026-05-01 00:00 NZST (+12) = 04-30 12:00Z
        ((2026, 4), "Pacific/Auckland", "2026-03-31T11:00Z", "2026-04-30T12:00Z"),
        # 2026-09-01 00:00 NZST (+12) = 08-31 12:00Z; 2026-10-01 00:00 NZDT (+13) = 09-30 11:00Z
        ((2026, 9), "Pacific/Auckland", "2026-08-31T12:00Z", "2026-09-30T11:00Z"),
        # 2026-03-01 00:00 PST (-8) = 08:00Z; 2026-04-01 00:00 PDT (-7) = 07:00Z
        ((2026, 3), "America/Los_Angeles", "2026-03-01T08:00Z", "2026-04-01T07:00Z"),
        # 2026-03-01 00:00 CET (+1) = 02-28 23:00Z; 2026-04-01 00:00 CEST (+2) = 03-31 22:00Z
        ((2026, 3), "Europe/Berlin", "2026-02-28T23:00Z", "2026-03-31T22:00Z"),
        # 2026-10-01 00:00 CEST (+2) = 09-30 22:00Z; 2026-11-01 00:00 CET (+1) = 10-31 23:00Z
        ((2026, 10), "Europe/Berlin", "2026-09-30T22:00Z", "2026-10-31T23:00Z"),
        ((2026, 2), "UTC", "2026-02-01T00:00Z", "2026-03-01T00:00Z"),
        ((2026, 12), "UTC", "2026-12-01T00:00Z", "2027-01-01T00:00Z"),
    ],
)
def test_month_runs_from_local_midnight_of_the_1st_to_that_of_the_next_1st(
    month: tuple[int, int], tz: str, start: str, end: str
) -> None:
    assert month_bounds(*month, tz) == (utc(start), utc(end))


def test_a_dst_month_is_an_hour_short_or_long() -> None:
    # March in Berlin: 31 days less the hour skipped; October: 31 days and the hour repeated
    march = month_bounds(2026, 3, "Europe/Berlin")
    october = month_bounds(2026, 10, ZoneInfo("Europe/Berlin"))
    assert march[1] - march[0] == (31 * 24 - 1) * HOUR_NS
    assert october[1] - october[0] == (31 * 24 + 1) * HOUR_NS


def test_the_last_month_9999_12_ends_at_the_end_of_9999_local() -> None:
    # UTC: 10000-01-01T00:00Z is LAST_S; Berlin in January is CET (+1), an hour earlier
    end_of_9999 = LAST_S * NS_PER_S
    assert month_bounds(9999, 12, "UTC") == (end_of_9999 - 31 * 24 * HOUR_NS, end_of_9999)
    assert month_bounds(9999, 12, "Europe/Berlin")[1] == LAST_S * NS_PER_S - HOUR_NS


def test_parse_month_reads_yyyy_mm_from_1970_to_9999() -> None:
    assert parse_month("2026-03") == (2026, 3)
    assert parse_month("1970-01") == (1970, 1)
    assert parse_month("9999-12") == (9999, 12)
    bad = ["2026-13", "2026-00", "1969-12", "2026-3", "2026/03", "2026-03-01", "", "２０２６-03"]
    for text in bad:
        with pytest.raises(ValueError, match="^month must be YYYY-MM"):
            parse_month(text)


def test_month_of_an_instant_is_its_local_month() -> None:
    # Auckland's April starts at 2026-03-31T11:00Z: a second earlier is still March there
    assert month_of(utc("2026-03-31T11:00Z"), "Pacific/Auckland") == (2026, 4)
    assert month_of(utc("2026-03-31T10:59:59Z"), "Pacific/Auckland") == (2026, 3)
    assert month_of(utc("2026-03-31T11:00Z"), "UTC") == (2026, 3)


# -- days ---------------------------------------------------------------------------------


def test_local_date_changes_at_local_midnight() -> None:
    # New York 2026-03-08 00:00 EST (-5) = 05:00Z
    assert local_date(utc("2026-03-08T04:59:59Z"), "America/New_York") == date(2026, 3, 7)
    assert local_date(utc("2026-03-08T05:00Z"), "America/New_York") == date(2026, 3, 8)


def test_a_fall_back_after_midnight_does_not_take_the_new_day_back() -> None:
    # America/St_Johns left NDT (-2:30) at 00:01 local on 2010-11-07 for NST (-3:30): at
    # 02:31Z the wall went from 00:01 back to 2010-11-06 23:01. The day 11-07 begins at its
    # first 00:00 (NDT, 02:30Z) and runs to 2010-11-08 00:00 NST = 03:30Z, 25 hours; at
    # 03:00Z the wall shows 2010-11-06 23:30, but the instant lies in the day 11-07.
    tz = "America/St_Johns"
    assert day_bounds(date(2010, 11, 7), tz) == (utc("2010-11-07T02:30Z"), utc("2010-11-08T03:30Z"))
    assert iso_local(utc("2010-11-07T03:00Z"), tz) == "2010-11-06T23:30:00-03:30"
    assert local_date(utc("2010-11-07T03:00Z"), tz) == date(2010, 11, 7)
    assert local_date(utc("2010-11-07T02:29:59Z"), tz) == date(2010, 11, 6)


def test_dst_days_are_23_and_25_hours_long() -> None:
    # Berlin 2026-03-29: 00:00 CET = 03-28 23:00Z to 03-30 00:00 CEST = 03-29 22:00Z (23 h)
    assert day_bounds(date(2026, 3, 29), "Europe/Berlin") == (
        utc("2026-03-28T23:00Z"),
        utc("2026-03-29T22:00Z"),
    )
    # Berlin 2026-10-25: 00:00 CEST = 10-24 22:00Z to 10-26 00:00 CET = 10-25 23:00Z (25 h)
    assert day_bounds(date(2026, 10, 25), "Europe/Berlin") == (
        utc("2026-10-24T22:00Z"),
        utc("2026-10-25T23:00Z"),
    )


def test_a_day_whose_midnight_is_in_the_gap_starts_after_the_gap() -> None:
    # America/Sao_Paulo sprang from 2018-11-04 00:00 (-3) to 01:00 (-2) at 03:00Z, so that
    # day starts at 01:00 -2 = 03:00Z and ends at 2018-11-05 00:00 -2 = 02:00Z (23 h)
    assert day_bounds(date(2018, 11, 4), "America/Sao_Paulo") == (
        utc("2018-11-04T03:00Z"),
        utc("2018-11-05T02:00Z"),
    )


def test_local_days_lists_the_days_overlapping_a_range_with_their_bounds() -> None:
    # [03-28 12:00Z, 03-30 00:00Z) touches Berlin 03-28 (CET, from 03-27 23:00Z), 03-29
    # (23 h) and 03-30 (00:00 CEST = 03-29 22:00Z, to 03-30 22:00Z); 03-31 is not touched
    assert local_days(utc("2026-03-28T12:00Z"), utc("2026-03-30T00:00Z"), "Europe/Berlin") == [
        (date(2026, 3, 28), utc("2026-03-27T23:00Z"), utc("2026-03-28T23:00Z")),
        (date(2026, 3, 29), utc("2026-03-28T23:00Z"), utc("2026-03-29T22:00Z")),
        (date(2026, 3, 30), utc("2026-03-29T22:00Z"), utc("2026-03-30T22:00Z")),
    ]
    # half-open: a range ending at a day's start does not touch it; an empty range no day
    assert [d for d, _, _ in local_days(0, utc("1970-01-02T00:00Z"), "UTC")] == [date(1970, 1, 1)]
    assert local_days(utc("2026-03-28T12:00Z"), utc("2026-03-28T12:00Z"), "Europe/Berlin") == []


def test_local_days_leaves_out_a_day_the_zone_skipped() -> None:
    # Pacific/Apia went from 2011-12-29 24:00 (-10) = 12-30 10:00Z straight to 12-31 00:00
    # (+14): 12-30 has no instant
    assert local_days(utc("2011-12-29T12:00Z"), utc("2011-12-30T12:00Z"), "Pacific/Apia") == [
        (date(2011, 12, 29), utc("2011-12-29T10:00Z"), utc("2011-12-30T10:00Z")),
        (date(2011, 12, 31), utc("2011-12-30T10:00Z"), utc("2011-12-31T10:00Z")),
    ]
    assert day_bounds(date(2011, 12, 30), "Pacific/Apia") == (utc("2011-12-30T10:00Z"),) * 2


def test_local_buckets_are_the_local_days_or_the_local_hours_that_overlap_a_range() -> None:
    # Kathmandu is +05:45: its hours start at :15 UTC; [00:10Z, 02:00Z) touches three of them
    hours = local_buckets(
        "Asia/Kathmandu", "hour", utc("2026-03-01T00:10Z"), utc("2026-03-01T02:00Z")
    )
    assert hours == [
        utc("2026-02-28T23:15Z"),
        utc("2026-03-01T00:15Z"),
        utc("2026-03-01T01:15Z"),
        utc("2026-03-01T02:15Z"),
    ]
    # Berlin's spring-forward day is one bucket of 23 h among its neighbours
    days = local_buckets("Europe/Berlin", "day", utc("2026-03-28T12:00Z"), utc("2026-03-30T00:00Z"))
    assert days == [
        utc("2026-03-27T23:00Z"),
        utc("2026-03-28T23:00Z"),
        utc("2026-03-29T22:00Z"),
        utc("2026-03-30T22:00Z"),
    ]
    # its hours that day: 23 of them, 01:00Z (02:00 CET) straight to 03:00 CEST
    spring = local_buckets(
        "Europe/Berlin", "hour", utc("2026-03-28T23:00Z"), utc("2026-03-29T22:00Z")
    )
    assert len(spring) == 24 and spring[-1] - spring[0] == 23 * HOUR_NS
    # UTC tenants use the query's own buckets; an empty range has none
    assert local_buckets("UTC", "day", 0, HOUR_NS) is None
    assert local_buckets("Europe/Berlin", "day", HOUR_NS, HOUR_NS) is None


# -- ISO 8601 -----------------------------------------------------------------------------


def test_iso_local_shows_the_zones_offset_to_the_second() -> None:
    assert iso_local(utc("2026-03-29T01:00Z"), "Europe/Berlin") == "2026-03-29T03:00:00+02:00"
    assert iso_local(utc("2026-03-29T00:59:59Z"), "Europe/Berlin") == "2026-03-29T01:59:59+01:00"
    # a fraction of a second is dropped, not rounded up
    assert iso_local(utc("2026-03-29T01:00Z") - 1, "Europe/Berlin") == "2026-03-29T01:59:59+01:00"
    assert iso_local(utc("2026-03-31T11:00Z"), "Pacific/Auckland") == "2026-04-01T00:00:00+13:00"
    assert iso_local(utc("2026-11-01T05:30Z"), "America/New_York") == "2026-11-01T01:30:00-04:00"
    assert iso_local(utc("2026-11-01T06:30Z"), "America/New_York") == "2026-11-01T01:30:00-05:00"


def test_parse_instant_reads_an_offset_or_z_exactly() -> None:
    # 02:00 +01:00 is 01:00Z
    assert parse_instant("2026-03-01T02:00:00+01:00") == utc("2026-03-01T01:00Z")
    assert parse_instant("2026-03-01T01:00:00Z") == utc("2026-03-01T01:00Z")
    assert parse_instant("2026-03-01T01:00:00-00:30") == utc("2026-03-01T01:30Z")
    # one microsecond is 1000 ns exactly; a float timestamp() near 1.77e9 s cannot say so
    assert parse_instant("2026-03-01T01:00:00.000001Z") == utc("2026-03-01T01:00Z") + 1_000
    assert parse_instant("2026-03-01T01:00:00.999999Z") == utc("2026-03-01T01:00Z") + 999_999_000


@pytest.mark.parametrize("text", ["2026-03-01T02:00:00", "2026-03-01"])
def test_parse_instant_refuses_a_naive_time(text: str) -> None:
    with pytest.raises(ValueError, match=r"must carry an explicit offset \(ISO 8601, e\.g\. "):
        parse_instant(text)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-02-30T00:00:00Z", "1772326800"])
def test_parse_instant_refuses_what_is_no_iso_instant(text: str) -> None:
    with pytest.raises(ValueError, match="explicit offset"):
        parse_instant(text)


def test_parse_instant_refuses_times_before_1970() -> None:
    assert parse_instant("1970-01-01T00:00:00Z") == 0
    with pytest.raises(ValueError, match="between 1970 and the end of 9999"):
        parse_instant("1970-01-01T00:59:59+01:00")
