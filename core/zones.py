"""A tenant's calendar in its IANA time zone; what is stored stays UTC.

Days and months are local (the service spec, "Time"): month ``2026-03`` of a
Berlin tenant is the instants from 2026-03-01 00:00 local to 2026-04-01 00:00 local. A local
time that does not exist (the spring-forward gap) means the first instant after the gap; an
ambiguous one (fall-back) means its first occurrence. Instants are integer Unix nanoseconds,
converted with exact integer arithmetic (never a float ``timestamp()``).

The local days tile the time line: a day runs from its 00:00 (as above) to the next day's, so
a DST day is 23 or 25 hours long, a day a zone skipped is empty, and ``local_date`` names the
day whose bounds hold an instant, even where a fall-back after midnight shows the previous
date on the wall for a while (America/St_Johns, 2010-11-07).
"""

from __future__ import annotations

import bisect
import calendar
import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from core.times import LAST_S, NS_PER_S, S_PER_DAY, S_PER_HOUR

NS_PER_US = 1_000
MINUTES_PER_DAY = 1_440

#: Names the zone database holds that are no tenant's calendar: the host's own zone, and
#: the placeholder for "not set".
NOT_TENANT_ZONES = frozenset({"localtime", "Factory"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2})")
#: The Gregorian calendar and a zone's rule for the far future repeat every 400 years.
_DAYS_PER_400_YEARS = 146_097
_LAST_ORDINAL = date.max.toordinal()


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_TENANT_ZONES


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name``; ValueError for any other string (a path, an empty
    name, a ``right/`` zone that counts leap seconds, which Unix time does not)."""
    if name not in _known_zones():
        raise ValueError(f"unknown time zone {name!r}")
    return ZoneInfo(name)


def _zone_of(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else zone(tz)


def _ns_of(moment: datetime) -> int:
    """An aware datetime as Unix ns, exactly."""
    delta = moment - _EPOCH
    return (delta.days * S_PER_DAY + delta.seconds) * NS_PER_S + delta.microseconds * NS_PER_US


def _moment(ns: int) -> datetime:
    """Unix ns as an aware UTC datetime (to the microsecond, rounded down)."""
    return _EPOCH + timedelta(microseconds=ns // NS_PER_US)


def _gap_end_ns(wall: datetime, z: ZoneInfo) -> int:
    """The first instant after the spring-forward gap that the naive ``wall`` falls in.

    Read with the offset after the gap (fold=1), ``wall`` is an instant before the
    transition; read with the offset before it (fold=0), one at or after it. Transitions are
    whole seconds, so a bisection over seconds finds the first with the new offset.
    """
    offset_before = wall.replace(tzinfo=z, fold=0).utcoffset()
    lo = _ns_of(wall.replace(tzinfo=z, fold=1)) // NS_PER_S
    hi = -(-_ns_of(wall.replace(tzinfo=z, fold=0)) // NS_PER_S)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (_EPOCH + timedelta(seconds=mid)).astimezone(z).utcoffset() == offset_before:
            lo = mid
        else:
            hi = mid
    return hi * NS_PER_S


def local_to_ns(day: date, at: time, tz: str | ZoneInfo) -> int:
    """The instant of local wall time ``day`` ``at`` in ``tz``, as Unix ns.

    A time in the spring-forward gap means the first instant after the gap (Berlin
    2026-03-29 02:30 is 03:00 CEST, 01:00Z); an ambiguous one means its first occurrence
    (``at.fold`` is ignored). For 24:00 (the next day's 00:00) use ``local_minute_to_ns``.
    """
    if at.tzinfo is not None:
        raise ValueError("at must be a local wall time, without a tzinfo")
    z = _zone_of(tz)
    wall = datetime.combine(day, at).replace(fold=0)
    ns = _ns_of(wall.replace(tzinfo=z))
    if _moment(ns).astimezone(z).replace(tzinfo=None) == wall:
        return ns
    return _gap_end_ns(wall, z)


def _midnight_ns(ordinal: int, z: ZoneInfo) -> int:
    """The start of the local day with proleptic ordinal ``ordinal`` (one past ``date.max``
    included, the end of 9999-12-31, by the 400-year period of calendar and zone rules)."""
    if ordinal > _LAST_ORDINAL:
        back = ordinal - _DAYS_PER_400_YEARS
        return _midnight_ns(back, z) + _DAYS_PER_400_YEARS * S_PER_DAY * NS_PER_S
    return local_to_ns(date.fromordinal(ordinal), time(0), z)


def parse_clock(text: str, *, allow_24: bool = False) -> int:
    """A local clock time ``HH:MM`` as minutes since the day's 00:00.

    ``24:00`` (1440, the end of the day) only with ``allow_24``, for the end of a span.
    ValueError (to be prefixed with what was read) otherwise.
    """
    last = "24:00" if allow_24 else "23:59"
    match = _CLOCK.fullmatch(text)
    minute = int(match[1]) * 60 + int(match[2]) if match and int(match[2]) < 60 else -1
    if not 0 <= minute <= (MINUTES_PER_DAY if allow_24 else MINUTES_PER_DAY - 1):
        raise ValueError(f"must be HH:MM (00:00 to {last}), not {text!r}")
    return minute


def local_minute_to_ns(day: date, minute: int, tz: str | ZoneInfo) -> int:
    """The instant of minute ``minute`` (0..1440) of local ``day``, as ``local_to_ns`` reads
    it; 1440 is 24:00, the next day's 00:00."""
    if not 0 <= minute <= MINUTES_PER_DAY:
        raise ValueError(f"minute of the day must be 0 to 1440, not {minute}")
    z = _zone_of(tz)
    if minute == MINUTES_PER_DAY:
        return _midnight_ns(day.toordinal() + 1, z)
    return local_to_ns(day, time(minute // 60, minute % 60), z)


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month), from 1970-01 to 9999-12."""
    match = _MONTH.fullmatch(text)
    if not (match and 1970 <= int(match[1]) <= 9999 and 1 <= int(match[2]) <= 12):
        raise ValueError(f"month must be YYYY-MM (1970-01 to 9999-12), not {text!r}")
    return int(match[1]), int(match[2])


def month_bounds(year: int, month: int, tz: str | ZoneInfo) -> tuple[int, int]:
    """[start_ns, end_ns) of a local calendar month: local 00:00 of the 1st to local 00:00 of
    the next month's 1st."""
    z = _zone_of(tz)
    first = date(year, month, 1).toordinal()
    return _midnight_ns(first, z), _midnight_ns(first + calendar.monthrange(year, month)[1], z)


def day_bounds(day: date, tz: str | ZoneInfo) -> tuple[int, int]:
    """[start_ns, end_ns) of a local day: 23 or 25 hours on a DST day, empty for a day the
    zone skipped (Pacific/Apia, 2011-12-30)."""
    z = _zone_of(tz)
    return _midnight_ns(day.toordinal(), z), _midnight_ns(day.toordinal() + 1, z)


def local_date(ns: int, tz: str | ZoneInfo) -> date:
    """The local day whose ``day_bounds`` hold the instant ``ns``."""
    z = _zone_of(tz)
    wall = _moment(ns).astimezone(z).date()
    # a fall-back just after midnight shows the old date again after the new day began
    if ns >= _midnight_ns(wall.toordinal() + 1, z):
        return wall + timedelta(days=1)
    return wall


def month_of(ns: int, tz: str | ZoneInfo) -> tuple[int, int]:
    """(year, month) of the local month the instant ``ns`` lies in."""
    day = local_date(ns, tz)
    return day.year, day.month


def local_days(start_ns: int, end_ns: int, tz: str | ZoneInfo) -> list[tuple[date, int, int]]:
    """(day, day_start_ns, day_end_ns) of every local day overlapping [start_ns, end_ns), in
    order, with the day's own bounds (not clipped to the range); skipped days are left out."""
    if end_ns <= start_ns:
        return []
    z = _zone_of(tz)
    ordinal = local_date(start_ns, z).toordinal()
    day_start = _midnight_ns(ordinal, z)
    days = []
    while day_start < end_ns:
        day_end = _midnight_ns(ordinal + 1, z)
        if day_end > day_start:
            days.append((date.fromordinal(ordinal), day_start, day_end))
        ordinal += 1
        day_start = day_end
    return days


def local_buckets(tz: str, granularity: str, start_ns: int, end_ns: int) -> list[int] | None:
    """The edges of the local days (or hours) of zone ``tz`` that overlap
    ``[start_ns, end_ns)``, for ``core.query``'s ``buckets_ns``; None for UTC, whose buckets
    are the query's own."""
    if tz == "UTC":
        return None
    days = local_days(start_ns, end_ns, tz)
    if not days:
        return None
    if granularity == "day":
        return [a for _, a, _ in days] + [days[-1][2]]
    hour = S_PER_HOUR * NS_PER_S
    edges = [a + k * hour for _, a, b in days for k in range(-(-(b - a) // hour))]
    edges.append(days[-1][2])
    # only the hours that overlap the range, as the query's own UTC hours are
    first = bisect.bisect_right(edges, start_ns) - 1
    last = bisect.bisect_left(edges, end_ns)
    return edges[first : last + 1]


def iso_local(ns: int, tz: str | ZoneInfo) -> str:
    """An instant as local ISO 8601 with the zone's offset, to the second (rounded down):
    ``2026-03-29T03:00:00+02:00``."""
    moment = _EPOCH + timedelta(seconds=ns // NS_PER_S)
    return moment.astimezone(_zone_of(tz)).isoformat(timespec="seconds")


def parse_instant(text: str) -> int:
    """ISO 8601 with an explicit offset or ``Z`` (``2026-03-01T02:00:00+01:00``) as Unix ns,
    from 1970 to the end of 9999. A naive time is refused: which zone it meant is a guess.

    ValueError messages are to be prefixed with what was read (``start must carry ...``).
    """
    example = "ISO 8601, e.g. 2026-03-01T02:00:00+01:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"must be an instant with an explicit offset ({example})") from exc
    if moment.utcoffset() is None:
        raise ValueError(f"must carry an explicit offset ({example})")
    ns = _ns_of(moment)
    if not 0 <= ns <= LAST_S * NS_PER_S:
        raise ValueError("must be between 1970 and the end of 9999")
    return ns
