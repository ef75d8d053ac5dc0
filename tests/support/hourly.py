"""Hourly fleets for the SLA tests: a month of frames with gaps placed by hand.

With ``slot_s = 3600`` a month is a few hundred slots per device, so every figure of a test
can be worked out on paper. Ingest honours the wire format's backfill limit (7 days before
``now``) and future skew, so frames go in day by day, each day with ``now`` at its end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import msgpack

from core import zones
from core.store import Store
from core.times import NS_PER_S

DAY_S = 86_400
HOUR_S = 3_600

#: the frames sent for the hour starting at ``ts`` (Unix seconds): (gateway, frame) pairs
Frames = Callable[[int], Iterable[tuple[str, object]]]


def previous_month(now_ns: int, tz: str, back: int = 1) -> tuple[int, int]:
    """The local month ``back`` months before the one ``now_ns`` lies in."""
    year, month = zones.month_of(now_ns, tz)
    index = year * 12 + month - 1 - back
    return index // 12, index % 12 + 1


def label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_s(year: int, month: int, tz: str) -> tuple[int, int]:
    """The month's bounds in the zone, Unix seconds."""
    start, end = zones.month_bounds(year, month, tz)
    return start // NS_PER_S, end // NS_PER_S


def local_s(year: int, month: int, day: int, hour: int, tz: str) -> int:
    """A local wall time as Unix seconds, worked out by zoneinfo (not by the code under test)."""
    return int(datetime(year, month, day, hour, tzinfo=ZoneInfo(tz)).timestamp())


def local_iso(year: int, month: int, day: int, hour: int, tz: str) -> str:
    return datetime(year, month, day, hour, tzinfo=ZoneInfo(tz)).isoformat()


def ingest_hours(store: Store, tenant_id: int, start_s: int, end_s: int, frames: Frames) -> int:
    """Send ``frames(ts)`` for every hour of ``[start_s, end_s)``: one batch per gateway and
    day, with ``now`` at the day's end. Returns how many frames were accepted (all of them)."""
    accepted = 0
    for day in range(start_s, end_s, DAY_S):
        day_end = min(day + DAY_S, end_s)
        by_gateway: dict[str, list[object]] = {}
        for ts in range(day, day_end, HOUR_S):
            for gateway, frame in frames(ts):
                by_gateway.setdefault(gateway, []).append(frame)
        for gateway, batch in by_gateway.items():
            body = msgpack.packb({"gateway": gateway, "frames": batch})
            result = store.ingest(tenant_id, body, day_end * NS_PER_S)
            assert result.accepted == len(batch), result
            accepted += result.accepted
    return accepted


def floor3(up: int, down: int) -> str:
    """up / (up + down) as a percent with three decimals, rounded down: the spec's rule,
    worked out with integers here so the tests do not lean on the code they check."""
    thousandths = 100_000 * up // (up + down)
    return f"{thousandths // 1000}.{thousandths % 1000:03d}"
