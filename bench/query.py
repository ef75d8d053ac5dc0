"""Uptime query benchmark: how fast ``core.query`` answers over stored day blocks.

A store is filled with synthetic day blocks (not through ingest: a month of 100,000 devices
is 4 billion frames) shaped like a real fleet: most device-days fully up, a few percent with
gaps and a fault, a few percent silent. Then, timed:

- one day, per device, over 10,000 devices (target: under 10 ms);
- a month, per device, over the whole fleet (target: well under a second: under 1 s);
- a month of daily fleet series, and the month's outages, for reference;
- a naive baseline over the same day: unpack every device's bitmaps and count, the obvious
  way without the full/empty shortcut, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from core import query
from core.dayblock import STATS_DTYPE, DayDelta, decode_bitmaps, empty_stats
from core.rollup import ENGINE
from core.store import Store
from core.times import (
    MS_PER_DAY,
    MS_PER_S,
    NS_PER_DAY,
    NS_PER_MS,
    NS_PER_S,
    S_PER_DAY,
    slots_per_day,
)

DESCRIPTION = "uptime queries over stored day blocks (day x 10k devices, month x fleet)"

NOW_S = 1_795_348_800  # 2026-11-22 12:00 UTC: a fixed clock, so runs compare
DAY_TARGET_MS = 10.0
MONTH_TARGET_MS = 1000.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=100_000, help="fleet size")
    parser.add_argument("--days", type=int, default=30, help="days of history")
    parser.add_argument("--repeat", type=int, default=5)


def fleet_day(day: int, n: int, rng: np.random.Generator, slots: int) -> DayDelta:
    """One synthetic day: 95 % fully up, 4 % with gaps and a fault, 1 % silent."""
    width = (slots + 7) // 8
    kind = rng.random(n)
    bits = np.ones((n, slots), np.bool_)
    gappy = np.flatnonzero((kind >= 0.95) & (kind < 0.99))
    for dev in gappy:
        for start in rng.integers(0, slots - 60, size=3):
            bits[dev, start : start + rng.integers(1, 60)] = False
    silent = kind >= 0.99
    bits[silent] = False
    cov = np.packbits(bits, axis=1, bitorder="little")
    fault = np.zeros((n, width), np.uint8)
    fault[gappy, 90] = 1  # one fault slot
    stats = empty_stats(n)
    live = ~silent
    stats["frames"][live] = slots
    stats["first_ms"][live] = 0
    stats["last_ms"][live] = MS_PER_DAY - MS_PER_S  # the last second of the day
    stats["last_status"][live] = 0
    assert stats.dtype == STATS_DTYPE
    return DayDelta(day, np.arange(n, dtype=np.uint32), cov, fault, stats)


def build(path: str, devices: int, days: int) -> tuple[Store, int, float]:
    store = Store(path, map_size=1 << 30)
    tenant = store.add_tenant("bench")
    t0 = time.perf_counter()
    store.add_devices(tenant.id, [f"site-{i // 200:03d}/dev-{i:05d}" for i in range(devices)])
    rng = np.random.default_rng(42)
    today = NOW_S // S_PER_DAY
    n_slots = slots_per_day(tenant.slot_s)
    for day in range(today - days, today):
        store.merge_days(tenant.id, [fleet_day(day, devices, rng, n_slots)])
    return store, tenant.id, time.perf_counter() - t0


def _time(work: Any, repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        result = work()
        times.append((time.perf_counter_ns() - t0) / NS_PER_MS)
    return times, result


def _naive_day(store: Store, tenant_id: int, day: int, devices: int) -> np.ndarray:
    """Baseline: unpack every device's bitmaps for the day and count up slots."""
    ((_, raw),) = [(d, r) for d, r in [(day, store.raw_day(tenant_id, day)[0])]]
    block = decode_bitmaps(raw)  # type: ignore[arg-type]
    cov, fault = block.dense(devices)
    up = np.unpackbits(cov, axis=1, bitorder="little") & ~np.unpackbits(
        fault, axis=1, bitorder="little"
    )
    return up.sum(axis=1)


def main(args: argparse.Namespace) -> dict[str, Any]:
    devices = 2_000 if args.quick else args.devices
    days = 3 if args.quick else args.days
    repeat = 2 if args.quick else args.repeat
    day_devices = min(10_000, devices)
    with tempfile.TemporaryDirectory(prefix="uptally-bench-") as path:
        store, tenant_id, build_s = build(path, devices, days)
        print(
            f"query bench ({ENGINE} engine installed): {devices:,} devices x {days} days, "
            f"built in {build_s:.1f} s"
        )
        today = NOW_S // S_PER_DAY
        day = today - 1
        now = NOW_S * NS_PER_S
        day_span = (day * NS_PER_DAY, (day + 1) * NS_PER_DAY)
        month_span = ((today - days) * NS_PER_DAY, today * NS_PER_DAY)
        subset = list(range(day_devices))

        day_ms, day_table = _time(
            lambda: query.uptime(store, tenant_id, *day_span, now, devices=subset), repeat
        )
        naive_ms, naive_up = _time(lambda: _naive_day(store, tenant_id, day, devices), repeat)
        assert np.array_equal(day_table.up, naive_up[:day_devices]), "query and baseline differ"
        month_ms, month = _time(lambda: query.uptime(store, tenant_id, *month_span, now), repeat)
        series_ms, _ = _time(
            lambda: query.series(store, tenant_id, *month_span, now, granularity="day"), repeat
        )
        outage_ms, found = _time(
            lambda: query.outages(store, tenant_id, *month_span, now), max(1, repeat // 2)
        )
        store.close()

    def row(name: str, ms: list[float], target: float | None = None) -> dict[str, Any]:
        best, median = min(ms), statistics.median(ms)
        verdict = "" if target is None else ("PASS" if best < target else "FAIL")
        print(
            f"  {name:<44} best {best:9.2f} ms  median {median:9.2f} ms"
            + (f"  target < {target:g} ms: {verdict}" if target else "")
        )
        return {
            "best_ms": best,
            "median_ms": median,
            "target_ms": target,
            "pass": None if target is None else best < target,
        }

    result = {
        "engine": ENGINE,
        "devices": devices,
        "days": days,
        "build_s": build_s,
        "day_per_device": row(
            f"one day, per device, {day_devices:,} devices",
            day_ms,
            None if args.quick else DAY_TARGET_MS,
        ),
        "naive_day_baseline": row(f"baseline: unpack all, {devices:,} devices", naive_ms),
        "month_per_device": row(
            f"{days} days, per device, {devices:,} devices",
            month_ms,
            None if args.quick else MONTH_TARGET_MS,
        ),
        "month_daily_series": row(f"{days} days, daily fleet series", series_ms),
        "month_outages": row(f"{days} days, outages ({len(found):,} found)", outage_ms),
        "fleet_uptime_percent": month.fleet_percent,
    }
    print(f"  fleet uptime over the month: {month.fleet_percent:.3f} %")
    return result
