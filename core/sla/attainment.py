"""Month attainment, credit and projection: the SLA figures of a tenant's calendar month.

The rules are those of ``docs/service.md`` ("SLA attainment of a month", "Decided edges"):

* The month is the tenant's, in its IANA zone; a slot belongs to it when the slot's start
  lies inside it.
* Counted: every device's slots from its activation to its retirement that have ended,
  less the slots that touch a maintenance window (of the tenant, of the site the device had
  at the slot, or of the device itself) or the device's time in lifecycle ``maintenance``.
* attainment = Σ up / Σ (up + down), an exact fraction (a percent here); none without a
  counted slot, which is met and earns no credit. Shown with three decimals rounded down.
* The projection assumes each remaining slot is up with the probability seen over the last
  168 hours of ended, counted slots (with none, the month to date), and leaves out the
  windows already known.

Everything is computed in one walk over the month's day blocks (:func:`core.query.uptime`,
with the tenant's local days as buckets), plus one over the last 168 hours for a month still
running, plus one per device whose site changed inside the month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from core import query, zones
from core.query import Exclusions, Int64s
from core.sla.history import LifecycleEntry, SiteHistory, maintenance_spans
from core.sla.windows import Window
from core.store import Store, Tenant
from core.tiers import Tier
from core.times import NS_PER_S, S_PER_HOUR

#: the projection's look-back
PROJECTION_NS = 168 * S_PER_HOUR * NS_PER_S

Interval = tuple[int, int]


def shown(attainment: Fraction | None) -> str | None:
    """A percent with three decimals, rounded down (99.8996 shows ``99.899``); None: none."""
    if attainment is None:
        return None
    thousandths = math.floor(attainment * 1000)
    return f"{thousandths // 1000}.{thousandths % 1000:03d}"


def ratio(up: int, down: int) -> Fraction | None:
    """Up as an exact percent of up + down; None when nothing was counted."""
    return Fraction(100 * up, up + down) if up + down else None


@dataclass
class SiteFigures:
    site: str
    devices: int
    up: int
    down: int
    excluded: int

    @property
    def attainment(self) -> Fraction | None:
        return ratio(self.up, self.down)


@dataclass
class MonthSla:
    """A tenant's SLA figures for one local calendar month (as of ``now_ns``)."""

    tenant: str
    year: int
    month: int
    zone: str
    start_ns: int
    end_ns: int
    complete: bool  # the month has ended (else: month to date)
    up: int
    down: int
    excluded: int
    devices: int  # devices with a counted slot
    target: Decimal
    band: tuple[Decimal, Decimal] | None
    credit_percent: Decimal
    projection: Fraction | None
    projected_credit_percent: Decimal
    days: list[tuple[int, int, int]] = field(default_factory=list)  # (start ns, up, down)
    sites: list[SiteFigures] = field(default_factory=list)
    site: str | None = None  # the figures are this site's

    def to_json(self, upstream_flag: bool = False) -> dict[str, Any]:
        """The API's answer (``docs/service.md``): exact figures as decimal strings, times
        in the tenant's zone, no attainment as null."""
        return {
            "tenant": self.tenant,
            "month": self.label,
            "zone": self.zone,
            "site": self.site,
            "from": zones.iso_local(self.start_ns, self.zone),
            "to": zones.iso_local(self.end_ns, self.zone),
            "complete": self.complete,
            "up": self.up,
            "down": self.down,
            "excluded": self.excluded,
            "devices": self.devices,
            "attainment": shown(self.attainment),
            "target": str(self.target),
            "met": self.met,
            "band": None
            if self.band is None
            else {"below": str(self.band[0]), "credit_percent": str(self.band[1])},
            "credit_percent": str(self.credit_percent),
            "projection": shown(self.projection),
            "projected_credit_percent": str(self.projected_credit_percent),
            "target_above_upstream": upstream_flag,
            "days": [
                {
                    "date": zones.local_date(start, self.zone).isoformat(),
                    "up": up,
                    "down": down,
                    "attainment": shown(ratio(up, down)),
                }
                for start, up, down in self.days
            ],
            "sites": [
                {
                    "site": f.site,
                    "devices": f.devices,
                    "up": f.up,
                    "down": f.down,
                    "excluded": f.excluded,
                    "attainment": shown(f.attainment),
                }
                for f in self.sites
            ],
        }

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def attainment(self) -> Fraction | None:
        return ratio(self.up, self.down)

    @property
    def met(self) -> bool:
        a = self.attainment
        return a is None or a >= Fraction(self.target)


def _clip(intervals: Sequence[Interval], start: int, end: int) -> list[Interval]:
    return [(max(a, start), min(b, end)) for a, b in intervals if a < end and b > start]


def exclusions(
    windows: Sequence[Window],
    sites: SiteHistory,
    lifecycle: Mapping[int, Sequence[LifecycleEntry]],
    device_index: Mapping[str, int],
    n: int,
    slot_ns: int,
    start_ns: int,
    end_ns: int,
) -> Exclusions:
    """What maintenance excludes over ``[start_ns, end_ns)`` of a tenant of ``n`` devices:
    its tenant windows for all; a site's windows for the devices that had the site at the
    slot (a site change at ``t`` moves the slots that start from ``t`` on); device windows and
    time in lifecycle ``maintenance`` per device."""
    lo, hi = max(start_ns - slot_ns, 0), end_ns + slot_ns  # a window just outside may touch
    tenant: list[Interval] = []
    per_site: dict[str, list[Interval]] = {}
    per_device: dict[int, list[Interval]] = {}
    for window in windows:
        found = window.occurrences(lo, hi)
        if not found:
            continue
        if window.scope == "tenant":
            tenant += found
        elif window.scope == "site":
            per_site.setdefault(window.target, []).extend(found)
        elif (dev := device_index.get(window.target)) is not None and dev < n:
            per_device.setdefault(dev, []).extend(found)
    for dev, entries in lifecycle.items():
        spans = _clip(maintenance_spans(entries), lo, hi)
        if spans and dev < n:
            per_device.setdefault(dev, []).extend(spans)
    groups: list[tuple[npt.ArrayLike, Sequence[Interval]]] = []
    if per_site:
        moved = sites.moved(lo, hi)
        codes, names = sites.codes_at(lo, n)
        for site, found in per_site.items():
            if site in names:
                members = np.flatnonzero(codes == names.index(site))
                members = members[~np.isin(members, list(moved))]
                if len(members):
                    groups.append((members, found))
        for dev in moved:
            for a, b, site in sites.spans(dev, lo, hi):
                if site in per_site:
                    # the span's slots: those that start at or after a, and before b
                    a_slot, b_slot = -(-a // slot_ns) * slot_ns, -(-b // slot_ns) * slot_ns
                    per_device.setdefault(dev, []).extend(_clip(per_site[site], a_slot, b_slot))
    return Exclusions(tenant, per_device, groups)


def _remaining(
    store: Store,
    tenant_id: int,
    slot_ns: int,
    from_slot: int,
    end_slot: int,
    excl: Exclusions,
    devices: Int64s,
) -> int:
    """Counted slots still to come in ``[from_slot, end_slot)`` for ``devices``: each one's
    from its activation to its retirement, less those touching a window already known."""
    length = end_slot - from_slot
    if length <= 0 or not len(devices):
        return 0
    lo, hi = query.device_ranges(store.devstate(tenant_id, devices), slot_ns, from_slot, end_slot)
    lo, hi = lo - from_slot, hi - from_slot
    position = {int(dev): i for i, dev in enumerate(devices)}

    def masked(windows: Sequence[Interval], base: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        mask = base.copy()
        for a, b in windows:
            i, j = max(a // slot_ns - from_slot, 0), min(-(-b // slot_ns) - from_slot, length)
            if i < j:
                mask[i:j] = True
        return mask

    def free_slots(mask: npt.NDArray[np.bool_], rows: Int64s) -> Int64s:
        free = np.concatenate(([0], np.cumsum(~mask)))
        return free[hi[rows]] - free[lo[rows]]

    tenant_mask = masked(excl.tenant, np.zeros(length, np.bool_))
    per_device = free_slots(tenant_mask, np.arange(len(devices)))
    groups = [(devs, windows) for devs, windows in excl.groups]
    singles = excl.devices or {}
    for devs, windows in groups:  # a site's devices: disjoint groups
        rows = np.array(
            [position[int(d)] for d in np.asarray(devs) if int(d) in position], np.int64
        )
        if len(rows):
            per_device[rows] = free_slots(masked(windows, tenant_mask), rows)
    for dev, windows in singles.items():  # a device's own windows, with its site's
        if dev not in position:
            continue
        mask = masked(windows, tenant_mask)
        for devs, group_windows in groups:
            if dev in np.asarray(devs):
                mask = masked(group_windows, mask)
        row = np.array([position[dev]], np.int64)
        per_device[row] = free_slots(mask, row)
    return int(per_device.sum())


def _projection(
    store: Store,
    tenant: Tenant,
    first: int,
    end: int,
    now_ns: int,
    excl: Exclusions,
    devices: Int64s,
    up: int,
    down: int,
) -> Fraction | None:
    slot_ns = tenant.slot_s * NS_PER_S
    ended = min(now_ns, store.blocks_complete_until_ns()) // slot_ns  # first slot not ended
    recent = query.uptime(
        store,
        tenant.id,
        max(now_ns - PROJECTION_NS, 0),
        now_ns,
        now_ns,
        devices=devices,
        exclusions=excl,
    )
    p = ratio(int(recent.up.sum()), int(recent.down.sum()))
    p = ratio(up, down) if p is None else p
    if p is None:
        return None
    from_slot = max(ended, first // slot_ns)
    remaining = _remaining(store, tenant.id, slot_ns, from_slot, end // slot_ns, excl, devices)
    if up + down + remaining == 0:
        return None
    return (100 * up + p * remaining) / (up + down + remaining)


def _aligned(ns: int, slot_ns: int) -> int:
    """The start of the first slot that starts at or after ``ns``."""
    return -(-ns // slot_ns) * slot_ns


def _sites(
    store: Store,
    tenant: Tenant,
    sites: SiteHistory,
    table: query.UptimeTable,
    excl: Exclusions,
    first: int,
    end: int,
    now_ns: int,
) -> list[SiteFigures]:
    """Figures per site: a device's slots count for the site it had at each slot."""
    n = len(store.device_ids(tenant.id))
    codes, names = sites.codes_at(first, n)
    codes = codes[table.devices]
    moved = sites.moved(first, end)
    keep = ~np.isin(table.devices, list(moved))
    counted = (table.up + table.down) > 0
    acc = np.zeros((len(names), 4), np.int64)  # up, down, excluded, counted devices
    for column, values in enumerate((table.up, table.down, table.excluded, counted)):
        np.add.at(acc[:, column], codes[keep], values[keep].astype(np.int64))
    totals = {name: [int(x) for x in acc[i]] for i, name in enumerate(names)}
    slot_ns = tenant.slot_s * NS_PER_S
    for dev in sorted(moved & set(table.devices.tolist())):
        for a, b, site in sites.spans(dev, first, end):
            a, b = _aligned(a, slot_ns), _aligned(b, slot_ns)
            part = query.uptime(store, tenant.id, a, b, now_ns, devices=[dev], exclusions=excl)
            row = totals.setdefault(site, [0, 0, 0, 0])
            row[0] += int(part.up[0])
            row[1] += int(part.down[0])
            row[2] += int(part.excluded[0])
            row[3] += int(part.up[0] + part.down[0] > 0)
    return [
        SiteFigures(site, row[3], row[0], row[1], row[2])
        for site, row in sorted(totals.items())
        if any(row)
    ]


def _at_site(
    sites: SiteHistory, site: str, n: int, slot_ns: int, first: int, end: int
) -> tuple[Int64s, dict[int, list[Interval]], dict[int, int]]:
    """The devices that had ``site`` at some slot of ``[first, end)``; for those that moved,
    the slots they spent elsewhere (as windows) and how many those are."""
    codes, names = sites.codes_at(first, n)
    members = set(np.flatnonzero(codes == names.index(site)).tolist()) if site in names else set()
    elsewhere: dict[int, list[Interval]] = {}
    counts: dict[int, int] = {}
    for dev in sites.moved(first, end):
        away = [
            (_aligned(a, slot_ns), _aligned(b, slot_ns))
            for a, b, at in sites.spans(dev, first, end)
            if at != site
        ]
        if len(away) == len(sites.spans(dev, first, end)):
            members.discard(dev)
            continue
        members.add(dev)
        elsewhere[dev] = [(a, b) for a, b in away if b > a]
        counts[dev] = sum((b - a) // slot_ns for a, b in elsewhere[dev])
    return np.array(sorted(members), np.int64), elsewhere, counts


def month_sla(
    store: Store,
    tenant: Tenant,
    year: int,
    month: int,
    now_ns: int,
    *,
    site: str | None = None,
    tier: Tier | None = None,
) -> MonthSla:
    """The tenant's SLA figures for month ``year-month`` in its zone, as of ``now_ns`` (of
    one site's devices, for the slots they had it, if ``site`` is given)."""
    tier = tier or tenant.tier
    slot_ns = tenant.slot_s * NS_PER_S
    start_ns, end_ns = zones.month_bounds(year, month, tenant.tz)
    first, end = _aligned(start_ns, slot_ns), _aligned(end_ns, slot_ns)  # its slots
    ids = store.device_ids(tenant.id)
    n = len(ids)
    sites = store.site_history(tenant.id)
    index = {device_id: dev for dev, device_id in enumerate(ids)}
    look_from = min(first, max(now_ns - PROJECTION_NS, 0))
    windows, lifecycle = store.windows(tenant.id), store.lifecycle(tenant.id)
    excl = exclusions(windows, sites, lifecycle, index, n, slot_ns, look_from, end)
    devices = np.arange(n, dtype=np.int64)
    # the slots ended so far: those still to come are neither counted nor excluded
    ended = min(now_ns, store.blocks_complete_until_ns()) // slot_ns * slot_ns
    until = min(end, max(ended, first))
    away: dict[int, int] = {}
    if site is not None:
        devices, elsewhere, away = _at_site(sites, site, n, slot_ns, first, until)
        per_device = dict(excl.devices or {})
        for dev, spans in elsewhere.items():
            per_device[dev] = [*per_device.get(dev, []), *spans]
        excl = Exclusions(excl.tenant, per_device, excl.groups)
    edges = [a for _, a, _ in zones.local_days(start_ns, end_ns, tenant.tz)] + [end_ns]
    table = query.uptime(
        store, tenant.id, first, until, now_ns, devices=devices, exclusions=excl, buckets_ns=edges
    )
    assert table.series is not None
    up, down = int(table.up.sum()), int(table.down.sum())
    attainment = ratio(up, down)
    complete = now_ns >= end_ns
    projection = attainment
    if not complete:  # month to date; a month to come has no projection either
        projection = (
            _projection(store, tenant, first, end, now_ns, excl, devices, up, down)
            if now_ns >= first
            else None
        )
    series = table.series
    figures = _sites(store, tenant, sites, table, excl, first, until, now_ns)
    if site is not None:
        figures = [f for f in figures if f.site == site]
    return MonthSla(
        tenant=tenant.name,
        year=year,
        month=month,
        zone=tenant.tz,
        start_ns=start_ns,
        end_ns=end_ns,
        complete=complete,
        up=up,
        down=down,
        excluded=int(table.excluded.sum()) - sum(away.values()),
        devices=int(((table.up + table.down) > 0).sum()),
        target=tier.uptime_target,
        band=tier.band(attainment),
        credit_percent=tier.credit_percent(attainment),
        projection=projection,
        projected_credit_percent=tier.credit_percent(projection),
        days=[
            (int(s), int(u), int(d))
            for s, u, d in zip(series.start_ns, series.up, series.down, strict=True)
        ],
        sites=figures,
        site=site,
    )


def history(
    store: Store, tenant: Tenant, months: Sequence[tuple[int, int]], now_ns: int
) -> list[MonthSla]:
    """:func:`month_sla` for each of ``months``."""
    return [month_sla(store, tenant, y, m, now_ns) for y, m in months]


def months_back(now_ns: int, tz: str, count: int) -> list[tuple[int, int]]:
    """The ``count`` local months up to the one ``now_ns`` lies in, oldest first."""
    year, month = zones.month_of(now_ns, tz)
    out = []
    for _ in range(count):
        out.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]
