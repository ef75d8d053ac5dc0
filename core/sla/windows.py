"""Maintenance windows: time a tenant, a site or a device is excluded from its SLA.

A window is one-off (two instants) or recurring (weekdays, a local start time, a duration,
an IANA zone, optional first and last dates). The service spec ("Decided edges") fixes the
rules: a recurring occurrence belongs to the local date it starts on, in the window's own
zone; ``first`` and ``last`` are inclusive and an occurrence starting on ``last`` runs its
full duration; a local start in a spring-forward gap means the first instant after the gap,
an ambiguous one its first occurrence; durations are elapsed time. Coverage is half-open:
an occurrence ending at an instant does not touch it.

The API and the CLI give windows as JSON-like specs (``Window.from_spec``); the store keeps
``to_record``; the API answers ``to_json``; people read ``describe``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core import zones
from core.times import NS_PER_S, S_PER_DAY, S_PER_HOUR, iso

SCOPES = ("tenant", "site", "device")
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

#: The longest recurring occurrence, and so how far back ``occurrences`` must look.
MAX_DURATION_S = 7 * S_PER_DAY
#: The longest one-off window a spec may ask for.
MAX_ONCE_S = 366 * S_PER_DAY

_ONCE_KEYS = ("start", "end")
_RECURRING_KEYS = ("weekdays", "at", "duration_min", "zone", "first", "last")
_SPEC_KEYS = frozenset(("scope", "site", "device", "reason", *_ONCE_KEYS, *_RECURRING_KEYS))
_RECORD_KEYS = frozenset(
    ("scope", "target", "start_ns", "end_ns", "weekdays", "local_start", "duration_s", "zone")
    + ("first", "last", "reason", "created_by", "created_ns")
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """A maintenance window; one-off when ``weekdays`` is empty, recurring otherwise.

    One-off: ``start_ns`` < ``end_ns`` (Unix ns), the recurring fields empty. Recurring:
    ``weekdays`` ascending and distinct (0 = Mon .. 6 = Sun), ``local_start`` ``HH:MM``,
    ``duration_s`` whole minutes up to 7 days, ``zone`` an IANA name, ``first``/``last``
    inclusive local dates or None; ``start_ns`` and ``end_ns`` 0. ``target`` is the site
    name or device id, "" for scope ``tenant``. ``created_ns`` 0 means not recorded.
    """

    id: int
    scope: str
    target: str = ""
    start_ns: int = 0
    end_ns: int = 0
    weekdays: tuple[int, ...] = ()
    local_start: str = ""
    duration_s: int = 0
    zone: str = ""
    first: date | None = None
    last: date | None = None
    reason: str = ""
    created_by: str = ""
    created_ns: int = 0

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"window: scope must be one of {', '.join(SCOPES)}")
        if (self.scope == "tenant") != (self.target == ""):
            raise ValueError("window: a site or device window names a target, a tenant one none")
        if not self.recurring:
            if self.local_start or self.duration_s or self.zone or self.first or self.last:
                raise ValueError("window: a one-off window has no recurring fields")
            if not self.start_ns < self.end_ns:
                raise ValueError("window: end_ns must be after start_ns")
            return
        if self.start_ns or self.end_ns:
            raise ValueError("window: a recurring window has no start_ns or end_ns")
        if self.weekdays != tuple(sorted(set(self.weekdays))) or not all(
            type(day) is int and 0 <= day <= 6 for day in self.weekdays
        ):
            raise ValueError("window: weekdays must be distinct days 0 (Mon) to 6 (Sun), ascending")
        try:
            zones.parse_clock(self.local_start)
        except ValueError as exc:
            raise ValueError(f"window: local_start {exc}") from None
        if not (
            type(self.duration_s) is int
            and 0 < self.duration_s <= MAX_DURATION_S
            and self.duration_s % 60 == 0
        ):
            raise ValueError(
                f"window: duration_s must be whole minutes up to 7 days, not {self.duration_s!r}"
            )
        zones.zone(self.zone)
        if self.first and self.last and self.last < self.first:
            raise ValueError("window: last must be on or after first")

    @property
    def recurring(self) -> bool:
        return bool(self.weekdays)

    def occurrences(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        """Every occurrence [s, e) overlapping [start_ns, end_ns) at all, in order, not
        clipped: one that ends at ``start_ns`` or starts at ``end_ns`` does not overlap."""
        if end_ns <= start_ns:
            return []
        if not self.recurring:
            if self.start_ns < end_ns and start_ns < self.end_ns:
                return [(self.start_ns, self.end_ns)]
            return []
        tz = zones.zone(self.zone)
        minute = zones.parse_clock(self.local_start)
        at = time(minute // 60, minute % 60)
        duration_ns = self.duration_s * NS_PER_S
        # an occurrence starts inside its own local day (or at its end, after a gap across
        # midnight), so the first that may still run at start_ns starts on this day
        day = zones.local_date(start_ns - duration_ns, tz)
        last_day = zones.local_date(end_ns - 1, tz)
        if self.first and day < self.first:
            day = self.first
        if self.last and last_day > self.last:
            last_day = self.last
        found = []
        for ordinal in range(day.toordinal(), last_day.toordinal() + 1):
            local_day = date.fromordinal(ordinal)
            if local_day.weekday() not in self.weekdays:
                continue
            start = zones.local_to_ns(local_day, at, tz)
            if start < end_ns and start + duration_ns > start_ns:
                found.append((start, start + duration_ns))
        return found

    @classmethod
    def from_spec(cls, spec: Mapping[str, object], *, window_id: int = 0) -> Window:
        """A window from what the API (JSON) or the CLI gives; ValueError naming the key.

        ``{"scope": "tenant" | "site" | "device", "site": ..., "device": ..., "reason": ...}``
        plus one-off ``{"start", "end"}`` (ISO 8601 with offsets, at most 366 days) or
        recurring ``{"weekdays": "Mon-Fri" | "Sat,Sun" | ["Mon", "Wed"], "at": "02:00",
        "duration_min": 120, "zone": "Europe/Berlin", "first": "2026-01-01", "last": ...}``.
        """
        if not isinstance(spec, Mapping):
            raise ValueError("window must be an object")
        unknown = sorted(map(str, set(spec) - _SPEC_KEYS))
        if unknown:
            raise ValueError(f"window: unknown key {', '.join(map(repr, unknown))}")
        scope = _text(spec, "scope")
        if scope not in SCOPES:
            raise ValueError(f"window: scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        for key in ("site", "device"):
            if key in spec and scope != key:
                raise ValueError(f"window: {key} is only for scope {key!r}, not {scope!r}")
        target = "" if scope == "tenant" else _text(spec, scope)
        if scope != "tenant" and not target:
            raise ValueError(f"window: {scope} must not be empty")
        reason = _text(spec, "reason") if "reason" in spec else ""
        once = [key for key in _ONCE_KEYS if key in spec]
        recurring = [key for key in _RECURRING_KEYS if key in spec]
        if once and recurring:
            raise ValueError(
                f"window: {once[0]} and {recurring[0]} do not go together: a window is one-off"
                " (start, end) or recurring (weekdays, at, duration_min, zone, first, last)"
            )
        if not once and not recurring:
            raise ValueError("window: missing key 'start' (one-off) or 'weekdays' (recurring)")
        if once:
            start = _instant(spec, "start")
            end = _instant(spec, "end")
            if end <= start:
                raise ValueError("window: end must be after start")
            if end - start > MAX_ONCE_S * NS_PER_S:
                raise ValueError("window: end must be at most 366 days after start")
            return cls(window_id, scope, target, start_ns=start, end_ns=end, reason=reason)
        weekdays = _weekdays(_given(spec, "weekdays"))
        at = _text(spec, "at")
        try:
            zones.parse_clock(at)
        except ValueError as exc:
            raise ValueError(f"window: at {exc}") from None
        duration_min = _given(spec, "duration_min")
        if type(duration_min) is not int or not 0 < duration_min * 60 <= MAX_DURATION_S:
            raise ValueError(
                f"window: duration_min must be an integer from 1 to 10080 (7 days), "
                f"not {duration_min!r}"
            )
        zone = _text(spec, "zone")
        try:
            zones.zone(zone)
        except ValueError:
            raise ValueError(f"window: zone {zone!r} is not a known time zone") from None
        first, last = _date(spec, "first"), _date(spec, "last")
        if first and last and last < first:
            raise ValueError("window: last must be on or after first")
        return cls(
            window_id,
            scope,
            target,
            weekdays=weekdays,
            local_start=at,
            duration_s=duration_min * 60,
            zone=zone,
            first=first,
            last=last,
            reason=reason,
        )

    def to_record(self) -> dict[str, Any]:
        """The stored form (ints, strs, lists; dates ISO), without the id the table keys it
        by; ``from_record`` gives the same window back."""
        record: dict[str, Any] = {"scope": self.scope, "target": self.target}
        if self.recurring:
            record |= {
                "weekdays": list(self.weekdays),
                "local_start": self.local_start,
                "duration_s": self.duration_s,
                "zone": self.zone,
            }
            if self.first:
                record["first"] = self.first.isoformat()
            if self.last:
                record["last"] = self.last.isoformat()
        else:
            record |= {"start_ns": self.start_ns, "end_ns": self.end_ns}
        return record | {
            "reason": self.reason,
            "created_by": self.created_by,
            "created_ns": self.created_ns,
        }

    @classmethod
    def from_record(cls, window_id: int, record: Mapping[str, Any]) -> Window:
        """The window ``to_record`` stored under ``window_id``."""
        unknown = set(record) - _RECORD_KEYS
        if unknown:
            raise ValueError(f"window record {window_id}: unknown fields {sorted(unknown)}")
        fields = dict(record)
        fields["weekdays"] = tuple(fields.get("weekdays", ()))
        for key in ("first", "last"):
            if fields.get(key) is not None:
                fields[key] = date.fromisoformat(fields[key])
        return cls(window_id, **fields)

    def to_json(self) -> dict[str, Any]:
        """The window as the API shows it: instants ISO UTC, weekdays by name."""
        shown: dict[str, Any] = {"id": self.id, "scope": self.scope}
        if self.scope != "tenant":
            shown[self.scope] = self.target
        if self.recurring:
            shown |= {
                "kind": "recurring",
                "weekdays": [WEEKDAY_NAMES[day] for day in self.weekdays],
                "at": self.local_start,
                "duration_min": self.duration_s // 60,
                "zone": self.zone,
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None,
            }
        else:
            shown |= {"kind": "once", "start": iso(self.start_ns), "end": iso(self.end_ns)}
        return shown | {
            "reason": self.reason,
            "created_by": self.created_by,
            "created": iso(self.created_ns) if self.created_ns > 0 else None,
        }

    def describe(self, tz: str | None = None) -> str:
        """One line for the CLI and the dashboard: ``Mon-Fri 02:00 for 2 h (Europe/Berlin),
        from 2026-01-01`` or ``2026-03-01 01:00Z → 03:00Z``; a one-off window in zone ``tz``
        if given (``2026-03-01 02:00 → 04:00 (Europe/Berlin)``)."""
        if not self.recurring:
            start, end = _utc(self.start_ns), _utc(self.end_ns)
            if tz is not None:
                start, end = start.astimezone(zones.zone(tz)), end.astimezone(zones.zone(tz))
            clock = "%H:%M:%S" if start.second or end.second else "%H:%M"
            end_format = clock if end.date() == start.date() else f"%Y-%m-%d {clock}"
            first, then = start.strftime(f"%Y-%m-%d {clock}"), end.strftime(end_format)
            return f"{first}Z → {then}Z" if tz is None else f"{first} → {then} ({tz})"
        line = (
            f"{_weekdays_text(self.weekdays)} {self.local_start} for "
            f"{_duration_text(self.duration_s)} ({self.zone})"
        )
        if self.first and self.last:
            return f"{line}, {self.first} to {self.last}"
        if self.first:
            return f"{line}, from {self.first}"
        if self.last:
            return f"{line}, until {self.last}"
        return line


def _weekdays_text(weekdays: tuple[int, ...]) -> str:
    """Weekdays as ``from_spec`` reads them, runs of three or more as ranges that may wrap:
    ``Mon-Fri``, ``Sat,Sun``, ``Fri-Mon``, ``Mon-Sun``."""
    days = set(weekdays)
    if len(days) == 7:
        return "Mon-Sun"
    parts = []
    for first in sorted(day for day in days if (day - 1) % 7 not in days):
        length = 1
        while (first + length) % 7 in days:
            length += 1
        run = [WEEKDAY_NAMES[(first + i) % 7] for i in range(length)]
        parts.append(f"{run[0]}-{run[-1]}" if length >= 3 else ",".join(run))
    return ",".join(parts)


def _duration_text(seconds: int) -> str:
    if seconds % S_PER_HOUR == 0:
        return f"{seconds // S_PER_HOUR} h"
    return f"{seconds // 60} min"


def _utc(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1_000)


def _given(spec: Mapping[str, object], key: str) -> object:
    if key not in spec:
        raise ValueError(f"window: missing key {key!r}")
    return spec[key]


def _text(spec: Mapping[str, object], key: str) -> str:
    value = _given(spec, key)
    if not isinstance(value, str):
        raise ValueError(f"window: {key} must be a string, not {value!r}")
    return value


def _instant(spec: Mapping[str, object], key: str) -> int:
    text = _text(spec, key)
    try:
        return zones.parse_instant(text)
    except ValueError as exc:
        raise ValueError(f"window: {key} {exc}, not {text!r}") from None


def _date(spec: Mapping[str, object], key: str) -> date | None:
    """An optional inclusive date ``YYYY-MM-DD``; null is the same as leaving it out."""
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"window: {key} must be a date YYYY-MM-DD, not {value!r}")


def _weekdays(value: object) -> tuple[int, ...]:
    """``"Mon-Fri"``, ``"Sat,Sun"``, ``"Fri-Mon"`` (ranges wrap) or a list of such items."""
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"window: weekdays must be a string or a list of days, not {value!r}")
    days: set[int] = set()
    for item in items:
        names = item.split("-") if isinstance(item, str) else []
        keys = [name.strip().title() for name in names]
        if not 1 <= len(keys) <= 2 or any(key not in WEEKDAY_NAMES for key in keys):
            raise ValueError(
                f"window: weekdays must name days Mon to Sun, one by one or as ranges like "
                f"Mon-Fri, not {item!r}"
            )
        first, last = WEEKDAY_NAMES.index(keys[0]), WEEKDAY_NAMES.index(keys[-1])
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    if not days:
        raise ValueError("window: weekdays must name at least one day")
    return tuple(sorted(days))
