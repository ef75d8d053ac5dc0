"""Support time and incident compliance: how long an incident waited in staffed hours.

The rules are those of ``docs/service.md`` ("Incidents", "Decided edges"); ``docs/sla.md``
("Support time and compliance") explains them with a worked example.

* **Support time** between two instants is the elapsed time of ``[start, end)`` that falls
  inside the tier's :class:`~core.tiers.SupportHours` in the tenant's zone. Each local day
  (:func:`core.zones.local_days`, so a DST day is 23 or 25 hours) whose weekday is staffed is
  open from the instant of its local ``start_min`` to that of its ``end_min`` (1440: the
  midnight that ends the day), read as :func:`core.zones.local_minute_to_ns` reads local
  times: a time in the spring-forward gap is the first instant after the gap, an ambiguous
  one its first occurrence. What is counted is elapsed time between those instants, never
  wall-clock minutes: ``Sun 01:00-04:00`` in New York on 2026-03-08 is two hours. Support
  time is whole seconds, rounded down from the nanoseconds; minutes are exact fractions of
  them.
* **Response time** is the support time from ``detected`` to ``acknowledged``, **resolve
  time** from ``detected`` to ``resolved``. An incident meets a target when that time is at
  most the target (exactly at it is met). One not answered by ``now`` is *missed* once its
  support time so far exceeds the target and *pending* (not counted) while it does not:
  pending means an answer given at ``now`` would still be met.
* A month's **compliance** counts the incidents detected in the tenant's local month.

Decisions the contract leaves open (each is a test in ``tests/sla/test_support.py``):

* Incidents ``cleared_by_backfill`` are left out: late frames showed they never happened,
  and nobody can be held to answer an outage that was not one.
* A device incident attached to a gateway incident (``gateway_incident`` not 0) is answered
  with its gateway's incident, which is counted; the attached one is not counted on its own.
* Only ``acknowledged_at`` answers the response target. An incident resolved (by its close or
  by staff) without an acknowledgement stays unanswered for response, so it is missed once
  past the target.
* The figures are as of ``now``: an incident detected after ``now`` is left out, and an
  acknowledgement or resolve recorded after ``now`` has not happened yet.
* The time compared with a target is the one reported, whole seconds rounded down.

Pure functions over plain values; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

from core.incidents import Incident
from core.tiers import MIN_PER_DAY, SupportHours, Tier
from core.times import NS_PER_S
from core.zones import day_bounds, local_date, local_days, local_minute_to_ns, month_bounds, zone

S_PER_MIN = 60
NS_PER_MIN = S_PER_MIN * NS_PER_S

Status = Literal["met", "missed", "pending"]


def _zone_of(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else zone(tz)


def _always(hours: SupportHours) -> bool:
    """Whether ``hours`` staff every instant (24x7): support time is then elapsed time."""
    return len(hours.days) == 7 and (hours.start_min, hours.end_min) == (0, MIN_PER_DAY)


def _open_close(day: date, hours: SupportHours, z: ZoneInfo) -> tuple[int, int] | None:
    """[open_ns, close_ns) of the local ``day``'s support hours, None when it is not staffed
    (an empty span, as for hours that lie wholly in a spring-forward gap, is returned)."""
    if day.weekday() not in hours.days:
        return None
    return local_minute_to_ns(day, hours.start_min, z), local_minute_to_ns(day, hours.end_min, z)


def _support_ns(start_ns: int, end_ns: int, hours: SupportHours, z: ZoneInfo) -> int:
    if end_ns <= start_ns:
        return 0
    if _always(hours):
        return end_ns - start_ns
    total = 0
    for day, day_start, day_end in local_days(start_ns, end_ns, z):
        span = _open_close(day, hours, z)
        if span is not None:
            lo = max(span[0], day_start, start_ns)
            hi = min(span[1], day_end, end_ns)
            total += max(0, hi - lo)
    return total


def support_seconds(start_ns: int, end_ns: int, hours: SupportHours, tz: str | ZoneInfo) -> int:
    """The elapsed seconds of ``[start_ns, end_ns)`` inside ``hours`` in zone ``tz``, rounded
    down from the nanoseconds; 0 when ``end_ns <= start_ns``. It walks local days, not
    minutes: a span of months costs a few calls per day."""
    return _support_ns(start_ns, end_ns, hours, _zone_of(tz)) // NS_PER_S


def support_minutes(
    start_ns: int, end_ns: int, hours: SupportHours, tz: str | ZoneInfo
) -> Fraction:
    """:func:`support_seconds` in minutes, exactly (seconds / 60), for display."""
    return Fraction(support_seconds(start_ns, end_ns, hours, tz), S_PER_MIN)


def _elapse(start_ns: int, support_ns: int, hours: SupportHours, z: ZoneInfo) -> int:
    """The first instant ``t`` with ``_support_ns(start_ns, t) == support_ns`` (>= 0)."""
    if support_ns <= 0 or _always(hours):
        return start_ns + max(support_ns, 0)
    left = support_ns
    day = local_date(start_ns, z)
    while True:
        span = _open_close(day, hours, z)
        if span is not None:
            day_start, day_end = day_bounds(day, z)
            lo = max(span[0], day_start, start_ns)
            hi = min(span[1], day_end)
            if hi > lo:
                if left <= hi - lo:
                    return lo + left
                left -= hi - lo
        day += timedelta(days=1)


def deadline_ns(start_ns: int, target_min: int, hours: SupportHours, tz: str | ZoneInfo) -> int:
    """The first instant at which ``target_min`` support minutes have elapsed since
    ``start_ns``: the inverse of :func:`support_seconds` (``support_seconds(start, deadline)``
    is ``target_min * 60``, and any earlier instant has less). A target of 0 is ``start_ns``.
    An incident still unanswered at the deadline is pending; from one second of support
    time past it, missed (see :func:`target_status`)."""
    if target_min < 0:
        raise ValueError(f"a target must be 0 minutes or more, not {target_min}")
    return _elapse(start_ns, target_min * NS_PER_MIN, hours, _zone_of(tz))


def target_status(
    detected_ns: int,
    answered_ns: int,
    target_min: int,
    hours: SupportHours,
    tz: str | ZoneInfo,
    now_ns: int,
) -> Status:
    """Whether an incident detected at ``detected_ns`` and answered (acknowledged, or
    resolved) at ``answered_ns`` (-1: not yet) met a target of ``target_min`` support minutes,
    as of ``now_ns``: ``met`` when its support time is at most the target, ``missed`` when
    it is more, and for one unanswered at ``now_ns`` (an answer after ``now_ns`` is not yet
    given) ``missed`` once its support time so far is more than the target, else
    ``pending``."""
    z = _zone_of(tz)
    # the first instant whose support time, in whole seconds, is more than the target
    late_from = _elapse(detected_ns, (target_min * S_PER_MIN + 1) * NS_PER_S, hours, z)
    if 0 <= answered_ns <= now_ns:
        return "met" if answered_ns < late_from else "missed"
    return "pending" if now_ns < late_from else "missed"


@dataclass(frozen=True)
class Tally:
    """One measure (response or resolve) of a month: incidents that met their target, that
    missed it, and that are pending (not counted)."""

    met: int = 0
    missed: int = 0
    pending: int = 0

    @property
    def share(self) -> Fraction | None:
        """met / (met + missed), exactly; None when no incident is counted."""
        counted = self.met + self.missed
        return Fraction(self.met, counted) if counted else None

    def add(self, status: Status) -> Tally:
        return Tally(
            self.met + (status == "met"),
            self.missed + (status == "missed"),
            self.pending + (status == "pending"),
        )


@dataclass(frozen=True)
class Compliance:
    """A tenant's incident compliance for the local month ``year``-``month``, as of
    ``now_ns``: ``response`` against ``response_target_min``, ``resolve`` against
    ``resolve_target_min``; ``excluded`` counts the month's incidents left out (cleared by
    backfill, or attached to a gateway incident)."""

    year: int
    month: int
    now_ns: int
    response: Tally
    resolve: Tally
    excluded: int = 0


def counts_on_its_own(incident: Incident) -> bool:
    """Whether an incident counts toward compliance: not ``cleared_by_backfill`` (it never
    happened) and not a device incident attached to a gateway incident (answered with it)."""
    return incident.state != "cleared_by_backfill" and incident.gateway_incident == 0


def month_compliance(
    incidents: Iterable[Incident],
    year: int,
    month: int,
    tz: str | ZoneInfo,
    hours: SupportHours,
    response_target_min: int,
    resolve_target_min: int,
    now_ns: int,
) -> Compliance:
    """Response and resolve compliance of the incidents (one tenant's) detected in the local
    month ``year``-``month`` of zone ``tz`` and by ``now_ns``; each is judged by
    :func:`target_status`, those :func:`counts_on_its_own` refuses are only counted as
    ``excluded``."""
    z = _zone_of(tz)
    month_start, month_end = month_bounds(year, month, z)
    response, resolve, excluded = Tally(), Tally(), 0
    for incident in incidents:
        detected = incident.detected_ns
        if not (month_start <= detected < month_end and detected <= now_ns):
            continue
        if not counts_on_its_own(incident):
            excluded += 1
            continue
        response = response.add(
            target_status(detected, incident.acknowledged_ns, response_target_min, hours, z, now_ns)
        )
        resolve = resolve.add(
            target_status(detected, incident.resolved_ns, resolve_target_min, hours, z, now_ns)
        )
    return Compliance(year, month, now_ns, response, resolve, excluded)


def shown_share(share: Fraction | None) -> str | None:
    """A share as a percent with one decimal, rounded down (never better than the truth);
    None for no share."""
    if share is None:
        return None
    tenths = math.floor(share * 1000)
    return f"{tenths // 10}.{tenths % 10}"


@dataclass(frozen=True)
class Measure:
    """One of an incident's two measures: its support minutes (so far, while unanswered) and
    where it stands against its target."""

    minutes: Fraction
    target_min: int
    status: str  # met, missed, pending, or excluded (not counted on its own)

    @property
    def shown(self) -> str:
        """The minutes with one decimal, rounded up: a time shown never looks shorter, so
        never better, than it was."""
        tenths = math.ceil(self.minutes * 10)
        return f"{tenths // 10}.{tenths % 10}"


def measures(incident: Incident, tier: Tier, tz: str | ZoneInfo, now_ns: int) -> dict[str, Measure]:
    """``{"response": ..., "resolve": ...}`` of an incident against its tier's targets, in the
    tier's support hours in zone ``tz``, as of ``now_ns``: what the API and the dashboard
    show beside every incident."""
    out = {}
    for name, answered, target in (
        ("response", incident.acknowledged_ns, tier.response_target_min),
        ("resolve", incident.resolved_ns, tier.resolve_target_min),
    ):
        until = answered if 0 <= answered <= now_ns else now_ns
        minutes = support_minutes(incident.detected_ns, until, tier.support_hours, tz)
        status = (
            target_status(incident.detected_ns, answered, target, tier.support_hours, tz, now_ns)
            if counts_on_its_own(incident)
            else "excluded"
        )
        out[name] = Measure(minutes, target, status)
    return out
