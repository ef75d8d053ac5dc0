"""Time units and conversions, in one place.

Stored and computed times are integer Unix nanoseconds (UTC); day blocks count
milliseconds within a UTC day; slots are ``slot_s`` wide and aligned to Unix time 0.
People read ISO 8601 (``iso``) and write ISO 8601 or Unix seconds (``parse_time``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
MS_PER_S = 1_000
S_PER_HOUR = 3_600
S_PER_DAY = 86_400
MS_PER_DAY = S_PER_DAY * MS_PER_S
NS_PER_DAY = S_PER_DAY * NS_PER_S

#: A wire timestamp (int or float) from here on counts milliseconds, below it seconds.
MS_THRESHOLD = 100_000_000_000

#: The latest time a person may name: the end of year 9999 (what ISO 8601 dates can say).
LAST_S = 253_402_300_800

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_engine_units(engine: str, units: Mapping[str, int]) -> None:
    """Raise ImportError unless ``units`` (an engine's own copy of constants of this module,
    by name) are these constants and include at least the ones every engine needs."""
    needed = {"S_PER_DAY", "NS_PER_S", "NS_PER_MS", "MS_PER_DAY", "NS_PER_DAY", "MS_THRESHOLD"}
    if not needed <= units.keys() or any(globals().get(k) != v for k, v in units.items()):
        raise ImportError(f"{engine}: time units differ from core.times")


def day_of(ns: int) -> int:
    """The UTC day number (days since 1970-01-01) an instant falls in."""
    return ns // NS_PER_DAY


def slots_per_day(slot_s: int) -> int:
    return S_PER_DAY // slot_s


def iso(ns: int) -> str | None:
    """An instant as ISO 8601 UTC (``2026-03-01T12:00:00Z``); None for a negative time (none)."""
    if ns < 0:
        return None
    return datetime.fromtimestamp(ns / NS_PER_S, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> int:
    """ISO 8601 (a naive time is UTC) or Unix seconds, as ns, from 1970 to the end of 9999.

    Raises ValueError with a message a person can act on.
    """
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is None:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("must be ISO 8601 or Unix seconds") from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delta = when - _EPOCH  # exact, unlike timestamp()
        seconds = delta.days * S_PER_DAY + delta.seconds + delta.microseconds / 1e6
        ns = (delta.days * S_PER_DAY + delta.seconds) * NS_PER_S + delta.microseconds * 1000
    else:
        ns = int(seconds * NS_PER_S) if math.isfinite(seconds) else -1
    if not (math.isfinite(seconds) and 0 <= seconds <= LAST_S):
        raise ValueError("must be between 1970 and the end of 9999")
    return ns
