"""Uptime queries over the stored day blocks, vectorised with numpy.

Every query works on slots of the tenant's width, aligned to Unix time 0 (UTC), and follows
"Uptime semantics" in ``docs/wire-format.md``: a slot is up when covered and free of faults,
down otherwise, except excluded slots (before activation, after retirement, inside an
exclusion window such as maintenance, or not yet ended), which count neither way.

The work is done per stored day. A device whose day is entirely covered with no fault (the
common case) or has no data at all is counted from its interval of in-scope slots alone; only
the devices with gaps or faults that day have their bitmaps unpacked.

Results reflect the last checkpoint (``Store.checkpoint``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.batch import BATTERY_NONE, RSSI_NONE
from core.dayblock import KIND_EMPTY, KIND_FULL
from core.store import Store
from core.times import NS_PER_MS, NS_PER_S, S_PER_HOUR, slots_per_day

Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Exclusions:
    """Windows excluded from uptime, e.g. maintenance: ``[start_ns, end_ns)`` intervals for
    the whole tenant, per device index (``devices``) and per group of device indexes that
    share their windows (``groups``: one site's devices, say, so that a window over many
    devices is masked once, not once per device). The SLA engine builds these."""

    tenant: Sequence[tuple[int, int]] = ()
    devices: Mapping[int, Sequence[tuple[int, int]]] | None = None
    groups: Sequence[tuple[npt.ArrayLike, Sequence[tuple[int, int]]]] = ()

    def all_groups(self) -> list[tuple[Int64s, Sequence[tuple[int, int]]]]:
        out = [(np.asarray(devs, np.int64), windows) for devs, windows in self.groups]
        for dev, windows in (self.devices or {}).items():
            out.append((np.array([dev], np.int64), windows))
        return out

    def mask(
        self, windows: Sequence[tuple[int, int]], day: int, slot_ns: int, n_slots: int
    ) -> npt.NDArray[np.bool_] | None:
        """Slots of ``day`` that touch any window, or None if none do."""
        out = None
        day_start = day * n_slots
        for start, end in windows:
            if end <= start:  # an empty window excludes nothing
                continue
            a = max(start // slot_ns - day_start, 0)
            b = min(-(-end // slot_ns) - day_start, n_slots)
            if a < b:
                if out is None:
                    out = np.zeros(n_slots, np.bool_)
                out[a:b] = True
        return out


NO_EXCLUSIONS = Exclusions()


@dataclass
class Scope:
    """A query's slot range and each device's own in-scope slot interval, in absolute slots."""

    tenant_id: int
    slot_ns: int
    n_slots: int  # per day
    first_slot: int
    end_slot: int  # exclusive
    devices: Int64s  # device indexes queried
    lo: Int64s  # per device: first in-scope slot
    hi: Int64s  # per device: end of in-scope slots (exclusive)


def _scope(
    store: Store,
    tenant_id: int,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    devices: Sequence[int] | npt.NDArray[np.int64] | None,
) -> Scope:
    tenant = store.tenants[tenant_id]
    slot_ns = tenant.slot_s * NS_PER_S
    n_slots = slots_per_day(tenant.slot_s)
    if devices is None:
        state = store.devstate(tenant_id)
        devs = np.arange(len(state), dtype=np.int64)
    else:
        devs = np.asarray(devices, np.int64)
        state = store.devstate(tenant_id, devs)
    # only ended slots count, and only those the day blocks are complete for: a slot after the
    # last checkpoint would otherwise look down for want of frames still in the live state
    now_ns = min(now_ns, store.blocks_complete_until_ns())
    first_slot = start_ns // slot_ns
    end_slot = min(-(-end_ns // slot_ns), now_ns // slot_ns)
    if end_ns <= start_ns:  # an empty period holds no slot
        end_slot = first_slot
    end_slot = max(end_slot, first_slot)
    lo, hi = device_ranges(state, slot_ns, first_slot, end_slot)
    return Scope(tenant_id, slot_ns, n_slots, first_slot, end_slot, devs, lo, hi)


def device_ranges(
    state: npt.NDArray[np.void], slot_ns: int, first_slot: int, end_slot: int
) -> tuple[Int64s, Int64s]:
    """Each device's counted slots within ``[first_slot, end_slot)``: from its activation
    (registration, else first frame; a device with neither counts none) to its retirement."""
    activation = np.where(state["registered_ms"] >= 0, state["registered_ms"], state["first_ms"])
    lo = np.where(activation >= 0, activation * NS_PER_MS // slot_ns, end_slot)
    lo = np.maximum(lo, first_slot)
    retired = state["retired_ms"]
    hi = np.where(retired >= 0, -(-retired * NS_PER_MS // slot_ns), end_slot)
    hi = np.minimum(hi, end_slot)
    hi = np.maximum(hi, lo)
    return lo.astype(np.int64), hi.astype(np.int64)


def _unpack(rows: npt.NDArray[np.uint8], n_slots: int) -> npt.NDArray[np.bool_]:
    return np.unpackbits(rows, axis=1, count=n_slots, bitorder="little").astype(np.bool_)


@dataclass
class _Day:
    """One day of the queried devices. Most devices are described by their in-scope interval
    and whether they were up all day; the "busy" ones (gaps, faults, exclusion windows) also
    carry their packed up-bits and, where windows apply, an exclusion mask."""

    day: int
    n_slots: int
    lo: Int64s  # in-scope interval within the day, per device
    hi: Int64s
    trivial_up: npt.NDArray[np.bool_]  # up for the whole in-scope interval (when not busy)
    busy: Int64s  # positions (into the queried devices) with per-slot detail
    up_packed: npt.NDArray[np.uint8]  # (len(busy), W): covered and not faulted
    excluded: npt.NDArray[np.bool_] | None  # (len(busy), n_slots) or None for no windows

    def up_bits(self, rows: Int64s | slice = slice(None)) -> npt.NDArray[np.bool_]:
        return _unpack(self.up_packed[rows], self.n_slots)

    def scope_bits(self, rows: Int64s | slice = slice(None)) -> npt.NDArray[np.bool_]:
        busy = self.busy[rows]
        arange = np.arange(self.n_slots)
        bits = (arange >= self.lo[busy, None]) & (arange < self.hi[busy, None])
        if self.excluded is not None:
            bits &= ~self.excluded[rows]
        return bits


def _days(store: Store, scope: Scope, exclusions: Exclusions) -> Iterator[_Day]:
    """Walk the days of the scope, with per-day detail for every queried device."""
    n_slots = scope.n_slots
    first_day = scope.first_slot // n_slots
    last_day = (max(scope.end_slot, scope.first_slot + 1) - 1) // n_slots
    blocks = {
        day: block for day, block, _ in store.day_blocks(scope.tenant_id, first_day, last_day)
    }
    groups = exclusions.all_groups()
    n = len(scope.devices)
    for day in range(first_day, last_day + 1):
        base = day * n_slots
        lo = np.clip(scope.lo - base, 0, n_slots)
        hi = np.maximum(np.clip(scope.hi - base, 0, n_slots), lo)
        block = blocks.get(day)
        if block is not None and block.n:
            known = scope.devices < block.n
            safe = np.where(known, scope.devices, 0)
            cov_kind = np.where(known, block.cov_kind[safe], KIND_EMPTY)
            fault_kind = np.where(known, block.fault_kind[safe], KIND_EMPTY)
        else:
            cov_kind = fault_kind = np.zeros(n, np.uint8)
        trivial_up = (cov_kind == KIND_FULL) & (fault_kind == KIND_EMPTY)
        detailed = ((cov_kind > KIND_FULL) | (fault_kind > KIND_FULL)) & (cov_kind != KIND_EMPTY)
        tenant_mask = exclusions.mask(exclusions.tenant, day, scope.slot_ns, n_slots)
        group_masks = []  # (which of the queried devices, their mask)
        for devs, windows in groups:
            mask = exclusions.mask(windows, day, scope.slot_ns, n_slots)
            if mask is not None:
                members = np.isin(scope.devices, devs)
                group_masks.append((members, mask))
                detailed |= members
        if tenant_mask is not None:
            detailed[:] = True
        busy = np.flatnonzero(detailed & (hi > lo))
        width = (n_slots + 7) // 8
        up_packed = np.zeros((len(busy), width), np.uint8)
        excluded = None
        if len(busy):
            if block is not None:
                cov, fault = block.rows(scope.devices[busy])
                up_packed = cov & ~fault
            if tenant_mask is not None or group_masks:
                excluded = np.zeros((len(busy), n_slots), np.bool_)
                if tenant_mask is not None:
                    excluded |= tenant_mask
                for members, mask in group_masks:
                    excluded[members[busy]] |= mask
        yield _Day(day, n_slots, lo, hi, trivial_up, busy, up_packed, excluded)


def percent(up: Int64s, down: Int64s) -> npt.NDArray[np.float64]:
    """Up slots as a percentage of up + down; NaN where nothing was in scope."""
    total = up + down
    return np.where(total > 0, 100.0 * up / np.maximum(total, 1), np.nan)


@dataclass
class UptimeTable:
    """Per-device slot counts over a period; ``percent`` is None where nothing was in scope."""

    devices: Int64s
    up: Int64s
    down: Int64s
    excluded: Int64s
    #: per bucket, when the query asked for buckets
    series: Series | None = None

    @property
    def percent(self) -> npt.NDArray[np.float64]:
        return percent(self.up, self.down)

    @property
    def fleet_percent(self) -> float | None:
        """Σ up / Σ (up + down) over the devices, as a percentage."""
        total = int(self.up.sum() + self.down.sum())
        return 100.0 * int(self.up.sum()) / total if total else None


def _pieces(day: int, n_slots: int, edges: Int64s) -> tuple[Int64s, Int64s, Int64s]:
    """The buckets a day's slots fall in: bucket ``i`` holds the slots ``edges[i]`` up to
    ``edges[i + 1]`` (absolute slot numbers, ascending). Returns the buckets that touch the
    day and each one's slot range within it, ``[start, end)``, empty pieces left out."""
    base = day * n_slots
    first = max(int(np.searchsorted(edges, base, "right")) - 1, 0)
    last = min(int(np.searchsorted(edges, base + n_slots, "left")), len(edges) - 1)
    buckets = np.arange(first, last, dtype=np.int64)
    starts = np.clip(edges[buckets] - base, 0, n_slots)
    ends = np.clip(edges[buckets + 1] - base, 0, n_slots)
    keep = ends > starts
    return buckets[keep], starts[keep], ends[keep]


def _counts(day: _Day, starts: Int64s, ends: Int64s) -> tuple[Int64s, Int64s]:
    """Up and in-scope slot counts, shape (devices, pieces), for pieces ``[starts, ends)`` of
    the day's slots.

    The busy devices are counted in their packed bits: per piece, a popcount of their up bits
    under the piece's mask and their own in-scope slots (their interval, less the excluded
    slots), eight slots a byte."""
    n_slots = day.n_slots
    in_scope = np.clip(
        np.minimum(day.hi[:, None], ends) - np.maximum(day.lo[:, None], starts), 0, None
    )
    up = np.where(day.trivial_up[:, None], in_scope, 0)
    if not len(day.busy):
        return up, in_scope
    slot = np.arange(n_slots)
    lo, hi = day.lo[day.busy], day.hi[day.busy]
    part = np.flatnonzero((lo > 0) | (hi < n_slots))  # not in scope all day
    kept = None  # packed in-scope slots of the busy devices; None: every slot of the day
    if len(part):
        kept = np.full(day.up_packed.shape, 0xFF, np.uint8)
        interval = (slot >= lo[part, None]) & (slot < hi[part, None])
        kept[part] = np.packbits(interval, axis=1, bitorder="little")
    if day.excluded is not None:
        free = ~np.packbits(day.excluded, axis=1, bitorder="little")
        kept = free if kept is None else kept & free
    up_packed = day.up_packed if kept is None else day.up_packed & kept
    pieces = np.packbits(
        (slot >= starts[:, None]) & (slot < ends[:, None]), axis=1, bitorder="little"
    )
    for i, piece in enumerate(pieces):
        up[day.busy, i] = np.bitwise_count(up_packed & piece).sum(axis=1)
        if kept is not None:
            in_scope[day.busy, i] = np.bitwise_count(kept & piece).sum(axis=1)
    return up, in_scope


@dataclass
class Series:
    """Slot counts per bucket (a day or an hour, UTC or local), summed over the devices."""

    start_ns: Int64s
    up: Int64s
    down: Int64s

    @property
    def percent(self) -> npt.NDArray[np.float64]:
        return percent(self.up, self.down)


def uptime(
    store: Store,
    tenant_id: int,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    *,
    devices: Sequence[int] | npt.NDArray[np.int64] | None = None,
    exclusions: Exclusions = NO_EXCLUSIONS,
    buckets_ns: Sequence[int] | None = None,
) -> UptimeTable:
    """Up, down and excluded slots per device over ``[start_ns, end_ns)``.

    With ``buckets_ns`` (ascending instants; bucket ``i`` is ``[buckets_ns[i],
    buckets_ns[i + 1])``, a local day say) the same walk also sums the devices' slots per
    bucket into ``series``: a slot counts in the bucket its start lies in."""
    scope = _scope(store, tenant_id, start_ns, end_ns, now_ns, devices)
    n = len(scope.devices)
    up = np.zeros(n, np.int64)
    in_scope = np.zeros(n, np.int64)
    whole_day = np.array([0], np.int64), np.array([scope.n_slots], np.int64)
    if buckets_ns is not None:
        edges = -(-np.asarray(buckets_ns, np.int64) // scope.slot_ns)
        bucket_up = np.zeros(max(len(edges) - 1, 0), np.int64)
        bucket_scope = np.zeros_like(bucket_up)
    for day in _days(store, scope, exclusions):
        if buckets_ns is None:
            day_up, day_scope = _counts(day, *whole_day)
        else:
            buckets, starts, ends = _pieces(day.day, scope.n_slots, edges)
            day_up, day_scope = _counts(day, starts, ends)
            np.add.at(bucket_up, buckets, day_up.sum(axis=0))
            np.add.at(bucket_scope, buckets, day_scope.sum(axis=0))
        up += day_up.sum(axis=1)
        in_scope += day_scope.sum(axis=1)
    period = max(-(-end_ns // scope.slot_ns) - scope.first_slot, 0) if end_ns > start_ns else 0
    table = UptimeTable(scope.devices, up, in_scope - up, period - in_scope)
    if buckets_ns is not None:
        starts_ns = np.asarray(buckets_ns, np.int64)[:-1]
        table.series = Series(starts_ns, bucket_up, bucket_scope - bucket_up)
    return table


def series(
    store: Store,
    tenant_id: int,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    *,
    granularity: str = "day",
    devices: Sequence[int] | npt.NDArray[np.int64] | None = None,
    exclusions: Exclusions = NO_EXCLUSIONS,
    buckets_ns: Sequence[int] | None = None,
) -> Series:
    """Up and down slots per UTC day or hour overlapping ``[start_ns, end_ns)``, or per
    bucket of ``buckets_ns`` (local days or hours: see :func:`uptime`) if given."""
    slot_ns = store.tenants[tenant_id].slot_s * NS_PER_S
    if buckets_ns is None:
        n_slots = NS_PER_S * 86_400 // slot_ns
        if granularity == "day":
            bucket_slots = n_slots
        elif granularity == "hour":
            if S_PER_HOUR % (slot_ns // NS_PER_S):
                raise ValueError("hour buckets need a slot width that divides an hour")
            bucket_slots = n_slots // 24
        else:
            raise ValueError("granularity must be 'day' or 'hour'")
        bucket_ns = bucket_slots * slot_ns
        first_bucket = start_ns // bucket_ns
        end_bucket = -(-end_ns // bucket_ns) if end_ns > start_ns else first_bucket
        buckets_ns = list(range(first_bucket * bucket_ns, end_bucket * bucket_ns + 1, bucket_ns))
    if len(buckets_ns) < 2:
        empty = np.zeros(0, np.int64)
        return Series(empty, empty, empty)
    table = uptime(
        store,
        tenant_id,
        start_ns,
        end_ns,
        now_ns,
        devices=devices,
        exclusions=exclusions,
        buckets_ns=buckets_ns,
    )
    assert table.series is not None
    return table.series


@dataclass(frozen=True)
class Outage:
    device: int
    start_ns: int
    end_ns: int
    ongoing: bool

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S


def outages(
    store: Store,
    tenant_id: int,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    *,
    min_outage: int = 5,
    devices: Sequence[int] | None = None,
    exclusions: Exclusions = NO_EXCLUSIONS,
) -> list[Outage]:
    """Maximal runs of down slots per device, at least ``min_outage`` slots long, that overlap
    ``[start_ns, end_ns)``; their start and end are clipped to the period.

    A run is measured on the device's timeline, not the period's: one that crosses an edge
    of the period is listed if it is ``min_outage`` slots long in all (the slots are looked
    at up to ``min_outage`` beyond each edge). Excluded slots end a run. A run that reaches
    the last ended slot is ``ongoing``.
    """
    if min_outage < 1:
        raise ValueError("min_outage must be at least 1 slot")
    slot_ns = store.tenants[tenant_id].slot_s * NS_PER_S
    first, last = start_ns // slot_ns, -(-end_ns // slot_ns)  # the period's slots
    if end_ns <= start_ns:
        return []
    margin = min_outage * slot_ns
    scope = _scope(store, tenant_id, max(start_ns - margin, 0), end_ns + margin, now_ns, devices)
    parts: list[tuple[Int64s, Int64s, Int64s]] = []  # (position, start slot, end slot)
    for day in _days(store, scope, exclusions):
        base = day.day * scope.n_slots
        detailed = np.zeros(len(scope.devices), np.bool_)
        detailed[day.busy] = True
        whole = np.flatnonzero(~detailed & ~day.trivial_up & (day.hi > day.lo))
        parts.append((whole, base + day.lo[whole], base + day.hi[whole]))
        if len(day.busy):
            down = day.scope_bits() & ~day.up_bits()
            padded = np.zeros((len(day.busy), scope.n_slots + 2), np.int8)
            padded[:, 1:-1] = down
            edges = np.diff(padded, axis=1)
            rows, starts = np.nonzero(edges == 1)
            _, ends = np.nonzero(edges == -1)  # row-major: pairs up with the starts
            parts.append((day.busy[rows], base + starts, base + ends))
    if not parts:
        return []
    pos, a, b = (np.concatenate(x).astype(np.int64) for x in zip(*parts, strict=True))
    if not len(pos):  # nothing down in the period (or nothing to look at)
        return []
    order = np.lexsort((a, pos))
    pos, a, b = pos[order], a[order], b[order]
    # stitch runs of one device that touch (across midnight): a new outage starts where not
    joins = np.zeros(len(pos), np.bool_)
    joins[1:] = (pos[1:] == pos[:-1]) & (a[1:] == b[:-1])
    starts = np.flatnonzero(~joins)
    ends = np.concatenate((starts[1:], [len(pos)])) - 1
    pos, a, b = pos[starts], a[starts], b[ends]
    last_ended = min(now_ns, store.blocks_complete_until_ns()) // scope.slot_ns
    ongoing = (b >= last_ended) & (scope.hi[pos] >= last_ended)
    long_enough = (b - a >= min_outage) & (b > first) & (a < last)
    a, b = np.maximum(a, first), np.minimum(b, last)
    return [
        Outage(int(scope.devices[p]), int(x) * scope.slot_ns, int(y) * scope.slot_ns, bool(o))
        for p, x, y, o in zip(
            pos[long_enough], a[long_enough], b[long_enough], ongoing[long_enough], strict=True
        )
    ]


@dataclass
class DeviceStatus:
    """Current state of every device of a tenant, dense by index."""

    ids: list[str]
    state: list[str]  # "online", "offline", "fault" or "inactive" (no frame yet, or retired)
    last_seen_ns: Int64s  # -1 for never
    last_status: npt.NDArray[np.uint8]
    battery: npt.NDArray[np.float64]  # percent, NaN for unknown
    rssi: npt.NDArray[np.float64]  # dBm, NaN for unknown
    firmware: list[str]


def current_status(store: Store, tenant_id: int, now_ns: int) -> DeviceStatus:
    """Online when the latest frame was healthy and its heartbeat has not run out; fault when
    the latest frame reported a fault; offline otherwise."""
    state = store.devstate(tenant_id)
    tenant = store.tenants[tenant_id]
    heartbeat = np.where(state["heartbeat_s"] > 0, state["heartbeat_s"], tenant.heartbeat_s)
    last_ns = np.where(state["last_ms"] >= 0, state["last_ms"] * NS_PER_MS, -1)
    covered = (last_ns >= 0) & (last_ns + heartbeat.astype(np.int64) * NS_PER_S > now_ns)
    labels = np.where(
        state["last_ms"] < 0,
        "inactive",
        np.where(state["last_status"] != 0, "fault", np.where(covered, "online", "offline")),
    )
    retired = (state["retired_ms"] >= 0) & (state["retired_ms"] * NS_PER_MS <= now_ns)
    labels = np.where(retired, "inactive", labels)
    fw_names = store.firmware_names(tenant_id)
    return DeviceStatus(
        ids=list(store.device_ids(tenant_id)[: len(state)]),
        state=[str(x) for x in labels],
        last_seen_ns=last_ns.astype(np.int64),
        last_status=state["last_status"].copy(),
        battery=np.where(state["batt_last"] != BATTERY_NONE, state["batt_last"] / 10.0, np.nan),
        rssi=np.where(state["rssi_last"] != RSSI_NONE, state["rssi_last"] / 10.0, np.nan),
        firmware=[fw_names[i] for i in state["fw_last"]],
    )


def billable_devices(store: Store, tenant_id: int, start_ns: int, end_ns: int) -> Int64s:
    """The devices with at least one accepted frame in ``[start_ns, end_ns)`` that were not
    retired before it began (a local month: billing's "billable devices"), as of the last
    checkpoint. Exact at bounds inside a UTC day: that day's earliest and latest frames say
    whether one fell on the period's side (a period is longer than a day)."""
    if end_ns <= start_ns:
        return np.zeros(0, np.int64)
    n = len(store.device_ids(tenant_id))
    seen = np.zeros(n, np.bool_)
    day_ns = 86_400 * NS_PER_S
    first_day, last_day = start_ns // day_ns, (end_ns - 1) // day_ns
    for day, stats in store.day_stats(tenant_id, first_day, last_day):
        m = min(len(stats), n)
        has = stats["frames"][:m] > 0
        base = day * day_ns
        if base < start_ns:  # the period begins inside this day: a frame at or after it
            has &= stats["last_ms"][:m].astype(np.int64) * NS_PER_MS + base >= start_ns
        if base + day_ns > end_ns:  # it ends inside this day: a frame before its end
            has &= stats["first_ms"][:m].astype(np.int64) * NS_PER_MS + base < end_ns
        seen[:m] |= has
    state = store.devstate(tenant_id)
    retired = (state["retired_ms"] >= 0) & (
        state["retired_ms"].astype(np.int64) * NS_PER_MS < start_ns
    )
    seen[: len(state)] &= ~retired[:n]
    return np.flatnonzero(seen).astype(np.int64)
